//go:build race

package shmchan

const raceEnabled = true
