package shmchan_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/codec"
)

// The examples run in one process to stay quick and deterministic, but
// every handle is what another process would have: a separate open region
// with its own roles. In real use the sender and the receiver are two
// programs calling the same lines.

// exampleName gives each example its own region name.
func exampleName(what string) string {
	return fmt.Sprintf("shmchan-example-%d-%s", os.Getpid(), what)
}

// Order is a pointer-free struct: it travels as its raw bytes.
type Order struct {
	ID    uint64
	Qty   int32
	Price float64
}

// Create makes a region; Open attaches to it, as a second process would.
// The first Send makes a handle the sender, the first Recv the receiver.
func Example() {
	ctx := context.Background()
	name := exampleName("basic")
	defer shmchan.Unlink(name)

	// Process A:
	tx, err := shmchan.Create[Order](name, shmchan.WithCapacity(1024))
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()

	// Process B:
	rx, err := shmchan.Open[Order](name)
	if err != nil {
		log.Fatal(err)
	}
	defer rx.Close()

	if err := tx.Send(ctx, Order{ID: 1, Qty: 5, Price: 9.5}); err != nil {
		log.Fatal(err)
	}
	o, err := rx.Recv(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", o)
	fmt.Println(rx.Len(), rx.Cap())
	// Output:
	// {ID:1 Qty:5 Price:9.5}
	// 0 1024
}

// OpenOrCreate lets either side start first: both call it with the same
// name and type, and whichever comes second opens what the first created.
func ExampleOpenOrCreate() {
	ctx := context.Background()
	name := exampleName("either")
	defer shmchan.Unlink(name)

	consumer, err := shmchan.OpenOrCreate[uint64](name) // starts first: creates
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()
	producer, err := shmchan.OpenOrCreate[uint64](name) // starts second: opens
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()

	producer.Send(ctx, 42)
	v, _ := consumer.Recv(ctx)
	fmt.Println(v)

	// A handle with another type is refused.
	_, err = shmchan.Open[int32](name)
	fmt.Println(errors.Is(err, shmchan.ErrTypeMismatch))
	// Output:
	// 42
	// true
}

// CloseSend is close(ch): the receiver gets everything sent before it,
// then ErrClosed; All ranges over the values until then.
func ExampleChan_CloseSend() {
	ctx := context.Background()
	name := exampleName("close")
	defer shmchan.Unlink(name)
	tx, _ := shmchan.Create[int](name)
	defer tx.Close()
	rx, _ := shmchan.Open[int](name)
	defer rx.Close()

	for i := 1; i <= 3; i++ {
		tx.Send(ctx, i*i)
	}
	tx.CloseSend()

	for v, err := range rx.All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(v)
	}
	_, err := rx.Recv(ctx)
	fmt.Println(errors.Is(err, shmchan.ErrClosed))
	fmt.Println(errors.Is(tx.Send(ctx, 4), shmchan.ErrClosed))
	// Output:
	// 1
	// 4
	// 9
	// true
	// true
}

// TrySend and TryRecv never block: ErrFull and ErrEmpty say why nothing
// happened. A channel holds exactly Cap() values.
func ExampleChan_TrySend() {
	name := exampleName("try")
	defer shmchan.Unlink(name)
	tx, _ := shmchan.Create[int](name, shmchan.WithCapacity(4))
	defer tx.Close()
	rx, _ := shmchan.Open[int](name)
	defer rx.Close()

	for i := 0; ; i++ {
		if err := tx.TrySend(i); errors.Is(err, shmchan.ErrFull) {
			fmt.Println("full after", i)
			break
		}
	}
	for {
		v, err := rx.TryRecv()
		if errors.Is(err, shmchan.ErrEmpty) {
			fmt.Println("empty")
			break
		}
		fmt.Println(v)
	}
	// Output:
	// full after 4
	// 0
	// 1
	// 2
	// 3
	// empty
}

// A []byte (or string) channel carries values of any length up to its
// maximum message size; a longer one is ErrTooLarge and is not sent.
func ExampleWithMaxMessageSize() {
	ctx := context.Background()
	name := exampleName("bytes")
	defer shmchan.Unlink(name)
	tx, _ := shmchan.Create[[]byte](name, shmchan.WithMaxMessageSize(16))
	defer tx.Close()
	rx, _ := shmchan.Open[[]byte](name)
	defer rx.Close()

	fmt.Println(tx.Send(ctx, []byte("hello")))
	err := tx.Send(ctx, []byte("far more than sixteen bytes"))
	fmt.Println(errors.Is(err, shmchan.ErrTooLarge))
	b, _ := rx.Recv(ctx)
	fmt.Printf("%s %d\n", b, rx.Len())
	// Output:
	// <nil>
	// true
	// hello 0
}

// Event has a string and a map: it cannot travel as raw bytes, so it needs
// a codec.
type Event struct {
	Kind string
	Tags map[string]int
}

// WithCodec chooses how values are encoded; codec.JSON and codec.Gob work
// for any type those packages handle. Without a codec such a type is
// ErrNoCodec.
func ExampleWithCodec() {
	ctx := context.Background()
	name := exampleName("json")
	defer shmchan.Unlink(name)

	_, err := shmchan.Create[Event](name)
	fmt.Println(errors.Is(err, shmchan.ErrNoCodec))

	tx, err := shmchan.Create[Event](name, shmchan.WithCodec(codec.JSON[Event]()))
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()
	rx, err := shmchan.Open[Event](name, shmchan.WithCodec(codec.JSON[Event]()))
	if err != nil {
		log.Fatal(err)
	}
	defer rx.Close()

	tx.Send(ctx, Event{Kind: "login", Tags: map[string]int{"attempt": 2}})
	e, _ := rx.Recv(ctx)
	fmt.Println(e.Kind, e.Tags["attempt"])
	// Output:
	// true
	// login 2
}

// SendBatch writes many values with one publish and at most one wake-up;
// RecvBatch takes whatever is there (at least one, at most len(buf)).
func ExampleChan_SendBatch() {
	ctx := context.Background()
	name := exampleName("batch")
	defer shmchan.Unlink(name)
	tx, _ := shmchan.Create[uint32](name, shmchan.WithCapacity(64))
	defer tx.Close()
	rx, _ := shmchan.Open[uint32](name)
	defer rx.Close()

	n, err := tx.SendBatch(ctx, []uint32{10, 20, 30, 40, 50})
	fmt.Println(n, err)

	buf := make([]uint32, 3)
	for total := 0; total < 5; {
		k, err := rx.RecvBatch(ctx, buf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(buf[:k])
		total += k
	}
	// Output:
	// 5 <nil>
	// [10 20 30]
	// [40 50]
}

// Frame is large: SendFunc and RecvFunc work on it in the slot itself,
// without a copy through a local variable.
type Frame struct {
	Seq    uint64
	Pixels [4096]byte
}

// SendFunc fills a value in place in shared memory; RecvFunc reads it in
// place. The pointer is valid only during the callback.
func ExampleChan_SendFunc() {
	ctx := context.Background()
	name := exampleName("inplace")
	defer shmchan.Unlink(name)
	tx, _ := shmchan.Create[Frame](name, shmchan.WithCapacity(8))
	defer tx.Close()
	rx, _ := shmchan.Open[Frame](name)
	defer rx.Close()

	err := tx.SendFunc(ctx, func(f *Frame) {
		f.Seq = 7
		for i := range f.Pixels {
			f.Pixels[i] = byte(i)
		}
	})
	fmt.Println(err)

	err = rx.RecvFunc(ctx, func(f *Frame) {
		fmt.Println(f.Seq, f.Pixels[1], f.Pixels[4095])
	})
	fmt.Println(err)
	// Output:
	// <nil>
	// 7 1 255
	// <nil>
}

// With WithMultiProducer many senders share one channel (in different
// processes, or as here different handles), each taking its own sender
// entry; one receiver gets all the values, each sender's in its order.
func ExampleWithMultiProducer() {
	ctx := context.Background()
	name := exampleName("mpsc")
	defer shmchan.Unlink(name)
	rx, err := shmchan.Create[[2]int](name, shmchan.WithMultiProducer(), shmchan.WithCapacity(64))
	if err != nil {
		log.Fatal(err)
	}
	defer rx.Close()

	for p := range 3 { // three producers
		tx, err := shmchan.Open[[2]int](name)
		if err != nil {
			log.Fatal(err)
		}
		for i := range 2 {
			tx.Send(ctx, [2]int{p, i})
		}
		tx.Close() // its values stay in the channel
	}

	var got [][2]int
	for range 6 {
		v, _ := rx.Recv(ctx)
		got = append(got, v)
	}
	slices.SortFunc(got, func(a, b [2]int) int { return a[0]*10 + a[1] - b[0]*10 - b[1] })
	fmt.Println(got)
	// Output:
	// [[0 0] [0 1] [1 0] [1 1] [2 0] [2 1]]
}

// All turns a channel into a range loop that ends when the senders close
// it; breaking out leaves the rest in the channel.
func ExampleChan_All() {
	ctx := context.Background()
	name := exampleName("all")
	defer shmchan.Unlink(name)
	tx, _ := shmchan.Create[string](name, shmchan.WithMaxMessageSize(32))
	defer tx.Close()
	rx, _ := shmchan.Open[string](name)
	defer rx.Close()

	for _, w := range []string{"one", "two", "stop", "four"} {
		tx.Send(ctx, w)
	}
	for w, err := range rx.All(ctx) {
		if err != nil || w == "stop" {
			break
		}
		fmt.Println(w)
	}
	fmt.Println(rx.Len(), "left")
	// Output:
	// one
	// two
	// 1 left
}
