// Command shmchan-nats bridges a shmchan channel to NATS JetStream and
// back, so that one pipeline spans machines:
//
//	machine A:  shmchan-nats out -server nats://hub:4222 orders
//	machine B:  shmchan-nats in  -server nats://hub:4222 orders
//
// out publishes every value of the channel to a subject (natsbridge.Out);
// in sends every message of a durable consumer into the channel
// (natsbridge.In). The channel must exist on each machine (its producer
// or consumer creates it; the command waits for it). The stream and the
// consumer are created when absent. -embedded starts an in-process NATS
// server with JetStream for a quick try. Ctrl-C stops cleanly: values not
// yet acknowledged stay where they are for the next run.
package main
