package store

import (
	"errors"

	"github.com/kerbgate/kerbgate/internal/reason"
)

// Refusal is the refusal for a failed store operation, the same for every caller:
// store_unavailable (503, ends by itself) when the store cannot be reached,
// internal_error otherwise. op names the operation ("put_token", "get_session");
// kv are more facts.
func Refusal(detail, op string, err error, kv ...any) *reason.Error {
	code := reason.Internal
	if errors.Is(err, ErrUnavailable) {
		code = reason.StoreUnavailable
	}
	facts := append([]any{"op", op}, kv...)
	return reason.New(code, detail, append(facts, "error", err.Error())...)
}
