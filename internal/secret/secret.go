// Package secret owns hashing and verifying applications' client secrets.
//
// Client secrets are stored in kerbgate's configuration only as hashes: argon2id in
// the PHC string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash), which Hash
// produces, or bcrypt ($2a$, $2b$, $2y$), which Verify also accepts. Nothing in this
// package logs a secret or puts one in an error or a return value.
package secret

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The parameters Hash uses: OWASP's recommended argon2id configuration
// (19 MiB of memory, 2 passes, 1 lane), a 16-byte salt and a 32-byte key.
const (
	Memory  = 19456 // KiB
	Time    = 2
	Threads = 1
	SaltLen = 16
	KeyLen  = 32
)

// Bounds on the hashes Verify accepts, so that a configured hash cannot make each
// verification take unbounded memory or time.
const (
	MaxMemory     = 256 * 1024 // KiB (256 MiB)
	MaxTime       = 10
	MaxThreads    = 16
	minSaltLen    = 8
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 64
	MaxBcryptCost = 16
	// bcrypt uses only the first 72 bytes of a secret; longer secrets never verify
	// against a bcrypt hash rather than verifying on their prefix.
	maxBcryptSecret = 72
)

// ErrMalformed matches (errors.Is) every error about an encoded hash that is not a
// well-formed argon2id or bcrypt hash, or whose parameters are outside the bounds.
var ErrMalformed = errors.New("malformed secret hash")

// formatError is a precise message about a malformed hash; it never contains the
// hash itself.
type formatError string

func (e formatError) Error() string        { return string(e) }
func (e formatError) Is(target error) bool { return target == ErrMalformed }

func malformed(format string, args ...any) error {
	return formatError(fmt.Sprintf(format, args...))
}

const errUnknown = formatError("not an argon2id or bcrypt hash; generate one with kerbgate hash-secret")

// Hash returns the argon2id PHC string of secret, with a fresh random salt:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, salt and key in unpadded standard
// base64. It takes tens of milliseconds by design.
func Hash(secret string) (string, error) {
	salt := make([]byte, SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("secret: reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, Time, Memory, Threads, KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, Memory, Time, Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether secret matches the encoded argon2id or bcrypt hash. A
// wrong secret is (false, nil); a malformed hash, or one outside the bounds
// (argon2id m ≤ 256 MiB, t ≤ 10, p ≤ 16; bcrypt cost ≤ 16), is an error matching
// ErrMalformed. The final comparison is constant time.
func Verify(encoded, secret string) (bool, error) {
	h, err := parse(encoded)
	if err != nil {
		return false, err
	}
	if h.bcrypt {
		if len(secret) > maxBcryptSecret {
			return false, nil
		}
		switch err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(secret)); {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, malformed("bcrypt hash: %v", err)
		}
	}
	key := argon2.IDKey([]byte(secret), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// Check validates an encoded hash without a secret, as configuration validation
// does: it accepts exactly what Verify accepts.
func Check(encoded string) error {
	_, err := parse(encoded)
	return err
}

type parsed struct {
	bcrypt  bool
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parse(encoded string) (*parsed, error) {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		return parseArgon2id(encoded)
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return parseBcrypt(encoded)
	case strings.HasPrefix(encoded, "$argon2i$"), strings.HasPrefix(encoded, "$argon2d$"):
		return nil, malformed("only argon2id hashes are supported, not %s; generate one with kerbgate hash-secret",
			strings.SplitN(encoded[1:], "$", 2)[0])
	case strings.HasPrefix(encoded, "$2$"), strings.HasPrefix(encoded, "$2x$"):
		return nil, malformed("only $2a$, $2b$ and $2y$ bcrypt hashes are supported; generate one with kerbgate hash-secret")
	}
	return nil, errUnknown
}

const argonShape = "an argon2id hash is $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>"

func parseArgon2id(s string) (*parsed, error) {
	// The base64 decoder skips CR and LF; refuse them (and any other control or
	// non-ASCII character) here, so that one hash has one spelling.
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }); i >= 0 {
		return nil, malformed("argon2id hash contains a space, control or non-ASCII character at position %d", i)
	}
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	if len(parts) != 6 {
		return nil, malformed("argon2id hash has %d $-separated fields, not 5; %s", len(parts)-1, argonShape)
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return nil, malformed("argon2id hash lacks its version field v=19; %s", argonShape)
	}
	if version, err := parseUint(v, 32); err != nil || version != argon2.Version {
		return nil, malformed("argon2id hash has version v=%.8s; only v=%d is supported", v, argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, malformed("argon2id parameters must be m=…,t=…,p=… in that order; %s", argonShape)
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return nil, malformed("argon2id parameters must be m=…,t=…,p=… in that order; %s", argonShape)
		}
		n, err := parseUint(val, 32)
		if err != nil {
			return nil, malformed("argon2id parameter %s is not a decimal number", name)
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case p < 1 || p > MaxThreads:
		return nil, malformed("argon2id parallelism p=%d is outside 1..%d", p, MaxThreads)
	case t < 1 || t > MaxTime:
		return nil, malformed("argon2id time cost t=%d is outside 1..%d", t, MaxTime)
	case m < 8*p || m > MaxMemory:
		return nil, malformed("argon2id memory m=%d KiB is outside %d..%d (8×p to 256 MiB)", m, 8*p, MaxMemory)
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return nil, malformed("argon2id salt is not unpadded standard base64")
	}
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return nil, malformed("argon2id salt is %d bytes, not %d to %d", len(salt), minSaltLen, maxSaltLen)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return nil, malformed("argon2id hash value is not unpadded standard base64")
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return nil, malformed("argon2id hash value is %d bytes, not %d to %d", len(key), minKeyLen, maxKeyLen)
	}
	return &parsed{memory: uint32(m), time: uint32(t), threads: uint8(p), salt: salt, key: key}, nil
}

// parseUint accepts only plain decimal digits without leading zeros (no sign, no
// spaces), so that one hash has one spelling.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a decimal number")
	}
	return strconv.ParseUint(s, 10, bits)
}

// bcryptAlphabet is bcrypt's base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func parseBcrypt(s string) (*parsed, error) {
	// $2b$10$ + 22 characters of salt + 31 of hash.
	if len(s) != 60 {
		return nil, malformed("a bcrypt hash has 60 characters, not %d", len(s))
	}
	if s[6] != '$' {
		return nil, malformed("bcrypt hash must have a two-digit cost: $2b$NN$…")
	}
	cost, err := parseUint(strings.TrimPrefix(s[4:6], "0"), 8)
	if err != nil {
		return nil, malformed("bcrypt cost is not a two-digit number")
	}
	if cost < uint64(bcrypt.MinCost) || cost > MaxBcryptCost {
		return nil, malformed("bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, MaxBcryptCost)
	}
	if i := strings.IndexFunc(s[7:], func(r rune) bool { return !strings.ContainsRune(bcryptAlphabet, r) }); i >= 0 {
		return nil, malformed("bcrypt hash has a character outside its base64 alphabet at position %d", 7+i)
	}
	return &parsed{bcrypt: true}, nil
}
