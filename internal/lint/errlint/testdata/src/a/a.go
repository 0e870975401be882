package a

import (
	"errors"
	"fmt"
)

var errSentinel = errors.New("sentinel")

func wraps(err error, id string) []error {
	return []error{
		fmt.Errorf("read %s: %w", id, err),
		fmt.Errorf("read %s: %v", id, err), // want "non-wrapping format verb for fmt.Errorf"
		fmt.Errorf("read %s: %s", id, err), // want "non-wrapping format verb for fmt.Errorf"
		fmt.Errorf("read %v: %w", id, err),
		fmt.Errorf("text only: %s", err.Error()),
		fmt.Errorf("kept: %v", err),         //nolint:errorlint // deliberately not wrapped: test
		fmt.Errorf("other linter: %v", err), //nolint:unused // want "non-wrapping format verb for fmt.Errorf"
		fmt.Errorf("listed: %v", err),       //nolint:unused,errorlint // deliberately not wrapped
		fmt.Errorf("multi-line %s: %v",
			id, err), // want "non-wrapping format verb for fmt.Errorf"
		fmt.Errorf("multi-line %s: %v",
			id, err), //nolint:errorlint // the directive goes on the line of the error
	}
}

func compares(err error) bool {
	return err == errSentinel // want "comparing with == will fail on wrapped errors"
}

type myErr struct{}

func (myErr) Error() string { return "mine" }

func asserts(err error) bool {
	_, ok := err.(myErr) // want "type assertion on error will fail on wrapped errors"
	return ok
}
