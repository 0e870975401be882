package jsexpr

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// Defaults for a zero Options.
const (
	// DefaultTimeout bounds one evaluation. The reference has no limit; 100ms is
	// over a thousand times what a typical bool_expr takes here (~50µs with
	// the fresh runtime) while keeping a runaway loop from stalling the
	// changes feed. Keep any override well under a second: see the package
	// doc on deep structures.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultMaxCallStack bounds JavaScript call depth so that runaway
	// recursion becomes a RangeError instead of exhausting memory.
	DefaultMaxCallStack = 1000
)

// Options configures a Sandbox. The zero value gives the defaults above.
type Options struct {
	Timeout      time.Duration // per evaluation; 0 -> DefaultTimeout
	MaxCallStack int           // JavaScript call depth; 0 -> DefaultMaxCallStack
}

// Sandbox evaluates programs; one per worker goroutine, not safe for concurrent use.
//
// Every evaluation runs in a brand-new goja runtime. Reusing one runtime was
// measured and rejected: a top-level "let y" stays in the runtime's global
// lexical scope, so the next evaluation declaring "let y" fails with
// "Identifier 'y' has already been declared", and goja has no way to drop
// those bindings; likewise a script may change built-ins (Array.prototype…)
// for every later evaluation. goja creates built-ins lazily, so a fresh
// runtime is cheap (see BenchmarkNewRuntime) and isolation is exact.
//
// The per-worker contract is kept anyway so that a later version may cache
// per-worker state without changing callers.
type Sandbox struct {
	timeout  time.Duration
	maxStack int
}

// NewSandbox returns a Sandbox with opts, defaults filled in.
func NewSandbox(opts Options) *Sandbox {
	s := &Sandbox{timeout: opts.Timeout, maxStack: opts.MaxCallStack}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.maxStack <= 0 {
		s.maxStack = DefaultMaxCallStack
	}
	return s
}

// Eval runs a script program with the given globals and returns its completion value exported to Go JSON-like values (map[string]any, []any, string, float64, bool, nil; undefined -> nil).
//
// globals are copied into the runtime (see the package's conversion rules), so
// the script can neither see nor change the caller's maps. A value of type
// func(args ...any) any becomes a callable JavaScript function.
// Errors are *ScriptError (thrown, or unconvertible value), *TimeoutError or
// *CanceledError; a nil program is a plain error.
func (s *Sandbox) Eval(ctx context.Context, p *Program, globals map[string]any) (any, error) {
	var out any
	err := s.exec(ctx, p, func(e *evaluation) error {
		v, err := e.runScript(globals)
		if err != nil {
			return err
		}
		out, err = e.export(v)
		return err
	})
	return out, err
}

// Truthy runs Eval and returns JS truthiness; an Empty program is true without running.
//
// It does not export the value: JavaScript truthiness is decided on the goja
// value, so e.g. an empty array is true (as in the reference) and no time is
// spent converting large results. A comparison of fields with literals is
// decided in Go when goja could not answer otherwise (fast.go).
func (s *Sandbox) Truthy(ctx context.Context, p *Program, globals map[string]any) (bool, error) {
	if p != nil && p.empty {
		return true, nil
	}
	if p != nil && p.fast != nil && (ctx == nil || ctx.Err() == nil) {
		if v, ok := p.fast.eval(globals); ok {
			return truthy(v), nil
		}
	}
	var out bool
	err := s.exec(ctx, p, func(e *evaluation) error {
		v, err := e.runScript(globals)
		if err != nil {
			return err
		}
		out = v.ToBoolean()
		return nil
	})
	return out, err
}

// Call calls a CompileFunction program with args (Go JSON-like values) and returns the exported result.
//
// The function runs with no globals other than the built-ins and with this
// undefined, like the reference's plain call f(report, latest_report).
// Each argument is copied, so the function cannot change the caller's values.
func (s *Sandbox) Call(ctx context.Context, p *Program, args ...any) (any, error) {
	var out any
	err := s.exec(ctx, p, func(e *evaluation) error {
		v, err := e.runScript(nil)
		if err != nil {
			return err
		}
		fn, ok := goja.AssertFunction(v)
		if !ok {
			return &ScriptError{Name: p.name, Message: "TypeError: program is not a function"}
		}
		jsArgs := make([]goja.Value, len(args))
		for i, a := range args {
			jsArgs[i], err = e.toJS(a, 0)
			if err != nil {
				return &ScriptError{Name: p.name, Message: fmt.Sprintf("argument %d: %v", i, err)}
			}
		}
		res, err := fn(goja.Undefined(), jsArgs...)
		if err != nil {
			return err
		}
		out, err = e.export(res)
		return err
	})
	return out, err
}

// Reasons for stopping an evaluation from outside, stored in
// evaluation.stopped and passed to Runtime.Interrupt.
const (
	running int32 = iota
	stoppedByTimeout
	stoppedByContext
)

// evaluation is the state of one Eval/Truthy/Call: its private runtime and
// the flag the timer and context set when they stop it.
type evaluation struct {
	s       *Sandbox
	p       *Program
	ctx     context.Context
	rt      *goja.Runtime
	stopped atomic.Int32
}

// exec runs body in a fresh runtime with the time bound, the context watch
// and panic recovery in place, and turns whatever went wrong into this
// package's error types while the time bound still applies (turning a thrown
// object into a message may itself run JavaScript, e.g. a toString getter).
func (s *Sandbox) exec(ctx context.Context, p *Program, body func(*evaluation) error) (err error) {
	if p == nil || p.prg == nil {
		return errors.New("jsexpr: nil program")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if cerr := ctx.Err(); cerr != nil {
		return &CanceledError{Name: p.name, Err: cerr}
	}
	e := &evaluation{s: s, p: p, ctx: ctx, rt: goja.New()}
	// eval() and new Function() inside the script parse with the runtime's
	// options: keep them from reading source maps off the host disk too.
	e.rt.SetParserOptions(parser.WithDisableSourceMaps)
	e.rt.SetMaxCallStackSize(s.maxStack)

	// Interrupt is safe to call from any goroutine, even before or after the
	// run; the runtime is discarded afterwards, so a late interrupt (which
	// ClearInterrupt would otherwise have to undo) cannot affect anything.
	timer := time.AfterFunc(s.timeout, func() { e.stop(stoppedByTimeout) })
	stopWatch := context.AfterFunc(ctx, func() { e.stop(stoppedByContext) })
	defer func() {
		timer.Stop()
		stopWatch()
	}()

	defer func() {
		// Never panic: a panic inside goja (or in a Go function global)
		// becomes an error for this one evaluation.
		if x := recover(); x != nil {
			switch x := x.(type) {
			case error:
				err = e.classify(x)
			case goja.Value: // a JavaScript value thrown outside a Try
				msg, _ := e.message(x)
				err = &ScriptError{Name: p.name, Message: truncate(msg)}
			default:
				err = &ScriptError{Name: p.name, Message: truncate(fmt.Sprintf("internal error: %v", x))}
			}
		}
	}()
	if err := e.harden(); err != nil {
		return e.classify(err)
	}
	if err := body(e); err != nil {
		return e.classify(err)
	}
	// A stop that raced with a successful finish is ignored: the result is
	// complete and correct.
	return nil
}

// stop interrupts the runtime; the first reason wins.
func (e *evaluation) stop(reason int32) {
	if e.stopped.CompareAndSwap(running, reason) {
		e.rt.Interrupt(reason)
	}
}

// runScript sets the globals and runs the compiled script.
func (e *evaluation) runScript(globals map[string]any) (goja.Value, error) {
	for name, v := range globals {
		jv, err := e.toJS(v, 0)
		if err != nil {
			return nil, &ScriptError{Name: e.p.name, Message: fmt.Sprintf("global %q: %v", name, err)}
		}
		if err := e.rt.Set(name, jv); err != nil {
			return nil, err
		}
	}
	return e.rt.RunProgram(e.p.prg)
}

// errStopped is returned by Go-side loops (export) that notice the stop
// flag; classify turns it into the timeout or cancellation error.
var errStopped = errors.New("stopped")

// classify maps goja's errors onto this package's error types.
func (e *evaluation) classify(err error) error {
	var (
		ie *goja.InterruptedError
		so *goja.StackOverflowError
		ex *goja.Exception
	)
	switch {
	case errors.As(err, &ie), errors.Is(err, errStopped):
		return e.stopError()
	case errors.As(err, &so):
		se := &ScriptError{Name: e.p.name, Message: "RangeError: Maximum call stack size exceeded"}
		e.position(se, so.Stack())
		return se
	case errors.As(err, &ex):
		msg, ok := e.message(ex.Value())
		if !ok && e.stopped.Load() != running {
			// Turning the value into a message was itself cut short.
			return e.stopError()
		}
		se := &ScriptError{Name: e.p.name, Message: truncate(msg)}
		e.position(se, ex.Stack())
		return se
	}
	var own *ScriptError
	if errors.As(err, &own) {
		return err
	}
	return &ScriptError{Name: e.p.name, Message: truncate(err.Error())}
}

// maxMessage bounds error messages, which end up in logs and in the errors
// recorded on documents: goja quotes whole inputs in some messages (a 2 MB
// regular expression comes back in its SyntaxError).
const maxMessage = 500

// truncate shortens msg to maxMessage bytes (on a rune boundary) plus "…".
func truncate(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

// stopError reports why the evaluation was interrupted.
func (e *evaluation) stopError() error {
	if e.stopped.Load() == stoppedByContext {
		cerr := e.ctx.Err()
		if cerr == nil {
			cerr = context.Canceled
		}
		return &CanceledError{Name: e.p.name, Err: cerr}
	}
	return &TimeoutError{Name: e.p.name, Timeout: e.s.timeout}
}

// message is String(v) for a thrown value, which for Error objects is
// "TypeError: msg". Converting may run script code (a custom toString) that
// can throw or loop, so it is guarded; ok is false when it failed and a fixed
// text is returned instead.
func (e *evaluation) message(v goja.Value) (msg string, ok bool) {
	const fallback = "uncaught exception (value cannot be converted to a string)"
	if v == nil {
		return "uncaught exception", true
	}
	defer func() {
		if recover() != nil {
			msg, ok = fallback, false
		}
	}()
	if ex := e.rt.Try(func() { msg = v.String() }); ex != nil {
		return fallback, false
	}
	return msg, true
}

// position fills in where the exception was thrown: the innermost frame of
// this program's own source (not of code built with eval or new Function).
func (e *evaluation) position(se *ScriptError, stack []goja.StackFrame) {
	for i := range stack {
		f := &stack[i]
		if f.SrcName() != e.p.name {
			continue
		}
		pos := f.Position()
		if pos.Line <= 0 {
			continue
		}
		se.Line, se.Column = pos.Line, pos.Column
		if e.p.fn && se.Line == 1 && se.Column > 1 {
			se.Column-- // the "(" added by CompileFunction
		}
		return
	}
}

// Fork returns a new Sandbox with the same bounds, for another goroutine
// (a job that runs on its own timer beside the others).
func (s *Sandbox) Fork() *Sandbox {
	return &Sandbox{timeout: s.timeout, maxStack: s.maxStack}
}
