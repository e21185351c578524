package testenv

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects what a process or a logger writes, safe for concurrent
// writers and readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Contains says whether s has been written.
func (b *Buffer) Contains(s string) bool { return strings.Contains(b.String(), s) }
