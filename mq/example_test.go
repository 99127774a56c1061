package mq_test

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shmchan/shmchan/mq"
)

// Notify asks the kernel for a signal when a message arrives on an empty
// queue. Here one handle registers and another sends; the sender could as
// well be another process, or a C program calling mq_send.
func ExampleQueue_Notify() {
	name := fmt.Sprintf("/shmchan-test-%d-example", os.Getpid())
	q, err := mq.Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, &mq.Attr{MaxMsg: 4, MsgSize: 64})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mq.Unlink(name)
	defer q.Close()

	// Catch the signal first: SIGUSR1's default action ends the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	if err := q.Notify(syscall.SIGUSR1); err != nil {
		fmt.Println(err)
		return
	}

	sender, err := mq.Open(name, os.O_WRONLY, 0, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sender.Close()
	if err := sender.TrySend([]byte("hello"), 7); err != nil {
		fmt.Println(err)
		return
	}

	select {
	case s := <-sigs:
		fmt.Println("signal:", s)
	case <-time.After(5 * time.Second):
		fmt.Println("no signal")
		return
	}
	buf := make([]byte, q.MsgSize())
	n, prio, err := q.TryReceive(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("message: %s (priority %d)\n", buf[:n], prio)
	// The registration was one-shot: call Notify again for the next one.

	// Output:
	// signal: user defined signal 1
	// message: hello (priority 7)
}
