// Package store owns kerbgate's shared state behind small interfaces: single-use
// handoff tokens, sessions and replay-cache entries. It provides an embedded bbolt
// implementation (Bolt, one node) and a Redis one (Redis, shared by the nodes of a
// farm: one server, Sentinel or a Cluster, its writes acknowledged by replicas
// when asked); both pass the same behaviour suite (package storetest).
//
// Secret identifiers (handoff tokens, session ids) are stored only as SHA-256 hashes:
// the store hashes what it is given, and nothing here stores or logs the raw value
// (errors never include it). Replay keys are already derived digests and are stored
// as given.
//
// Open opens the store a node is configured with (typed Options, not the
// configuration file) and reports at start-up whether Redis answers.
//
// The package must not know HTTP or applications' policies: callers decide lifetimes
// and pass the times; the store only records, expires and consumes.
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kerbgate/kerbgate/internal/identity"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
)

// Token is what a single-use handoff token stands for.
type Token struct {
	AppID       string
	RedirectURI string
	Identity    identity.Identity
	IssuedAt    time.Time
	ExpiresAt   time.Time
}

// Session is a signed-in session.
type Session struct {
	// AppID is the application the session belongs to; "" for kerbgate's own
	// browser session.
	AppID     string
	Identity  identity.Identity
	CreatedAt time.Time
	ExpiresAt time.Time
}

var (
	// ErrNotFound means the token or session is unknown, revoked or already purged.
	ErrNotFound = errors.New("store: not found")
	// ErrTokenUsed means the token was taken before. A tombstone is kept until the
	// token's ExpiresAt so that a second take reports this rather than ErrNotFound.
	ErrTokenUsed = errors.New("store: token already used")
	// ErrExpired means the token or session exists but its ExpiresAt has passed.
	ErrExpired = errors.New("store: expired")
	// ErrOtherApp means the token was issued to another application than the one
	// taking it. The token is left as it was: its own application can still take it.
	ErrOtherApp = errors.New("store: token belongs to another application")
	// ErrExists means PutToken was given a token that is already recorded (live or
	// used); tokens are never overwritten, so a used token cannot be revived.
	ErrExists = errors.New("store: token already exists")
	// ErrLocked means another process holds the store file open.
	ErrLocked = errors.New("store file is locked by another kerbgate process")
)

// ErrUnavailable means a networked store (Redis) cannot be reached or did not answer
// in time: the outcome of the operation is unknown and callers must refuse the
// request (fail closed). It is the same value as replay.ErrUnavailable, so one
// errors.Is check covers tokens, sessions and the replay cache. The condition ends
// by itself when the store answers again.
var ErrUnavailable = replay.ErrUnavailable

// Tokens records single-use handoff tokens.
type Tokens interface {
	// PutToken records token until t.ExpiresAt. It fails with ErrExists if the token
	// was recorded before.
	PutToken(ctx context.Context, token string, t Token) error
	// TakeToken atomically returns and consumes the token issued to appID: of N
	// concurrent calls at most one succeeds. It fails with ErrNotFound,
	// ErrTokenUsed, ErrExpired (now at or after ExpiresAt) or ErrOtherApp (the token
	// is another application's; it is checked inside the atomic take and the token
	// stays live for its own application).
	TakeToken(ctx context.Context, token, appID string, now time.Time) (Token, error)
	// TakeTokenReading is TakeToken and GetSessions(ids) in one operation (one
	// Redis round trip, one bbolt transaction): a redemption that must also check
	// records (a code's sign-in, ended or not) waits for the store once. The take
	// is as TakeToken's, atomic (and as durable: the replicas acknowledge it
	// as any write); the reads are made whether or not it succeeds,
	// and answered only when it does (reads[i] answers ids[i] as GetSessions).
	TakeTokenReading(ctx context.Context, token, appID string, now time.Time, ids []string) (Token, []SessionRead, error)
}

// Sessions records sessions by id.
type Sessions interface {
	// PutSession records (or replaces) the session id until s.ExpiresAt.
	PutSession(ctx context.Context, id string, s Session) error
	// GetSession returns the session; ErrNotFound (including revoked) or ErrExpired
	// (now at or after ExpiresAt).
	GetSession(ctx context.Context, id string, now time.Time) (Session, error)
	// DeleteSession revokes the session; ErrNotFound if absent.
	DeleteSession(ctx context.Context, id string) error
	// GetSessions reads several sessions in one operation (one Redis round trip,
	// one bbolt read transaction): a request that must consult several records
	// (an access token's revocation, its sign-in's end, its refresh family) waits
	// for the store once. reads[i] answers ids[i] as GetSession would (its
	// Session, or Err: ErrNotFound, ErrExpired, a malformed record's error); err
	// is a failure of the read as a whole (ErrUnavailable, a cancelled context,
	// more than MaxGetSessions ids, an empty id), after which no answer holds.
	GetSessions(ctx context.Context, ids []string, now time.Time) (reads []SessionRead, err error)
}

// SessionRead is one id's answer of GetSessions.
type SessionRead struct {
	Session Session
	Err     error
}

// MaxGetSessions bounds the ids of one GetSessions.
const MaxGetSessions = 16

// checkIDs rejects a GetSessions call with too many ids or an empty one.
func checkIDs(ids []string) error {
	if len(ids) > MaxGetSessions {
		return fmt.Errorf("store: %d session ids in one read, at most %d", len(ids), MaxGetSessions)
	}
	for _, id := range ids {
		if err := checkID("session id", id); err != nil {
			return err
		}
	}
	return nil
}

// Store is everything kerbgate keeps in shared state.
type Store interface {
	Tokens
	Sessions
	replay.Cache
	Close() error
}

// idBytes is the number of random bytes in an id from NewID.
const idBytes = 32

// NewID returns 32 random bytes from r (crypto/rand when r is nil) encoded as
// base64url without padding (43 characters). It is used for handoff tokens and
// session ids.
func NewID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [idBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("store: reading random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashID returns the storage key for a secret id. Implementations must key records
// by this hash and never by the raw value.
func hashID(id string) [sha256.Size]byte {
	return sha256.Sum256([]byte(id))
}

// checkID rejects empty ids without echoing any value.
func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("store: empty %s", what)
	}
	return nil
}

// checkExpiry rejects records without an expiry: every record must be purgeable.
func checkExpiry(what string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("store: %s without ExpiresAt", what)
	}
	return nil
}

// ctxErr reports a cancelled context before any work starts.
func ctxErr(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	return ctx.Err()
}
