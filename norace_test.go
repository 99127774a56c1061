//go:build !race

package shmchan

const raceEnabled = false
