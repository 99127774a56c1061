package shmchan

import "github.com/shmchan/shmchan/internal/region"

// bellNames are a region's doorbell queue names, for the tests' leak checks.
var bellNames = region.BellNames
