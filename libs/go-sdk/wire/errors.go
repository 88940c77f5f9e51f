// Package wire holds the v1 NATS messages of the Arc contract, their limits and error codes,
// so Go services speak to the brain and TTS without re-deriving MessagePack field names.
package wire

import (
	"context"
	"errors"
	"fmt"
)

// Code is one of the contract's error codes; nothing else crosses a service boundary.
type Code string

const (
	BadRequest  Code = "bad_request"
	TooLarge    Code = "too_large"
	Unsupported Code = "unsupported"
	Busy        Code = "busy"
	Timeout     Code = "timeout"
	Cancelled   Code = "cancelled"
	Internal    Code = "internal"
)

// Codes lists every contract code, in the contract's order.
var Codes = []Code{BadRequest, TooLarge, Unsupported, Busy, Timeout, Cancelled, Internal}

// Error is a failure with a contract code: what a peer reported in a terminal `error`
// chunk, or what local validation refused before anything was sent.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Retryable says whether a retry can help: only failures of capacity or time, never of input
// (the same rule as arc_common.errors).
func (e *Error) Retryable() bool {
	return e.Code == Busy || e.Code == Timeout || e.Code == Internal
}

// Is makes errors.Is(err, &wire.Error{Code: wire.Busy}) match on the code alone.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Message == "" && t.Code == e.Code
}

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorFor rebuilds the error a peer reported; an unknown code becomes `internal`, keeping
// the unknown code in the message as the Python side does.
func ErrorFor(code, message string) *Error {
	for _, known := range Codes {
		if string(known) == code {
			return &Error{Code: known, Message: message}
		}
	}
	return &Error{Code: Internal, Message: code + ": " + message}
}

// CodeOf is the contract code of err: its own for an *Error, `cancelled` or `timeout` for a
// context that ended, `internal` for anything else, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var arcErr *Error
	switch {
	case errors.As(err, &arcErr):
		return arcErr.Code
	case errors.Is(err, context.Canceled):
		return Cancelled
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	}
	return Internal
}
