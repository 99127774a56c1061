package shmchan

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	name := testName(t)
	c, err := Create[[2]uint64](name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := uint64(0); i < 10000; i++ {
		if err := c.Send(ctx, [2]uint64{i, ^i}); err != nil {
			t.Fatal(err)
		}
		v, err := c.Recv(ctx)
		if err != nil || v[0] != i || v[1] != ^i {
			t.Fatal(v, err)
		}
	}
}
