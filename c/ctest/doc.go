// Package ctest holds the tests of the C header, ../shmchan.h with its
// implementation ../shmchan.c (a C11 reader and writer of shmchan regions
// written from layout/FORMAT.md), and of the Python wrapper
// ../../python/shmchan.py built on it.
//
// There is no Go API here. The tests compile C programs with the system's
// cc and run them against Go code using the root package's public API, in
// both directions; they fail, rather than skip, when cc is missing. (They
// cannot live in c/ itself: the go command refuses a package directory
// holding .c files unless it uses cgo.)
package ctest
