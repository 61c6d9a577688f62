package identity

import (
	"errors"
	"fmt"
)

// ParseError reports text that is not a valid public key, peer ID or
// certificate hash. Callers inspect it with errors.As instead of matching
// message text.
type ParseError struct {
	Kind  string // what was being parsed: "public key", "peer ID" or "certificate hash"
	Input string // the rejected text, truncated to a readable length
	Err   error  // why it was rejected
}

// Error returns a one-line description naming the kind, the input and the cause.
func (e *ParseError) Error() string {
	return fmt.Sprintf("identity: invalid %s %q: %v", e.Kind, e.Input, e.Err)
}

// Unwrap returns the underlying cause.
func (e *ParseError) Unwrap() error { return e.Err }

// maxQuotedInput bounds how much of a rejected input is copied into a
// ParseError, so that a hostile or accidental megabyte of text does not end up
// in logs.
const maxQuotedInput = 80

func parseError(kind, input string, err error) *ParseError {
	if len(input) > maxQuotedInput {
		input = input[:maxQuotedInput] + "..."
	}
	return &ParseError{Kind: kind, Input: input, Err: err}
}

var (
	errHexLength = errors.New("want 64 hexadecimal digits")
	errZero      = errors.New("all-zero value is reserved for \"unset\"")
)
