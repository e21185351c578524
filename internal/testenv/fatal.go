package testenv

import (
	"fmt"
	"runtime"
	"testing"
)

// fatalTB is t, except that Fatal and Fatalf record the message and end
// the calling goroutine without failing t.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// CatchFatal runs f with a stand-in for t and reports whether f called
// Fatal or Fatalf on it, and with what message, without failing t: for
// testing helpers whose job is to fail a test. Everything else the
// stand-in does, t does.
func CatchFatal(t testing.TB, f func(testing.TB)) (msg string, fataled bool) {
	tb := &fatalTB{TB: t}
	returned := make(chan bool, 1)
	go func() {
		ok := false
		defer func() { returned <- ok }()
		f(tb)
		ok = true
	}()
	if <-returned {
		return "", false
	}
	return tb.msg, true
}
