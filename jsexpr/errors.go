package jsexpr

import (
	"errors"
	"fmt"
	"time"
)

// ErrTimeout matches (with errors.Is) every *TimeoutError, for callers that
// only need to know that the time bound, not the script, ended the run.
var ErrTimeout = errors.New("expression timed out")

// TimeoutError reports an evaluation stopped by Options.Timeout. The spec
// treats it like a thrown error; it is a distinct type so that logs and
// metrics can tell a slow expression from a wrong one.
type TimeoutError struct {
	Name    string
	Timeout time.Duration
}

// Error reads "name: expression timed out after 100ms".
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: expression timed out after %s", e.Name, e.Timeout)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// ScriptError reports a JavaScript exception (thrown by the script or by the
// engine, e.g. a TypeError or a call-stack overflow) or a value the sandbox
// could not convert. Message is what JavaScript's String(error) gives, e.g.
// "TypeError: Cannot read property 'x' of undefined", so config authors see
// the familiar text.
type ScriptError struct {
	Name    string
	Message string
	Line    int // where it was thrown, 0 when unknown
	Column  int
}

// Error reads "name: TypeError: … (line 1, column 5)".
func (e *ScriptError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d, column %d)", e.Name, e.Message, e.Line, e.Column)
	}
	return fmt.Sprintf("%s: %s", e.Name, e.Message)
}

// CanceledError reports an evaluation stopped because its context ended. It
// unwraps to ctx.Err(), so errors.Is(err, context.Canceled) works.
type CanceledError struct {
	Name string
	Err  error
}

// Error reads "name: expression cancelled: context canceled".
func (e *CanceledError) Error() string {
	return fmt.Sprintf("%s: expression cancelled: %v", e.Name, e.Err)
}

// Unwrap returns the context's error.
func (e *CanceledError) Unwrap() error { return e.Err }
