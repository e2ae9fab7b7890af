package store

import (
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bolt keeps attempt counts in bucket "attempts" (key SHA-256(key); value the count,
// the last attempt and the end of the window: three big-endian 8-byte integers,
// milliseconds) and familiar sources in bucket "familiar" (value the expiry, Unix
// nanoseconds). Purge deletes both once they end.
var (
	bucketAttempts = []byte("attempts")
	bucketFamiliar = []byte("familiar")
)

var _ Attempts = (*Bolt)(nil)

const attemptLen = 24

func decodeAttempt(v []byte) attemptRecord {
	if len(v) != attemptLen {
		return attemptRecord{} // malformed: start over rather than lock anyone out
	}
	return attemptRecord{
		count: int(binary.BigEndian.Uint64(v[0:8])),
		last:  int64(binary.BigEndian.Uint64(v[8:16])),
		until: int64(binary.BigEndian.Uint64(v[16:24])),
	}
}

func (r attemptRecord) encode() []byte {
	v := make([]byte, attemptLen)
	binary.BigEndian.PutUint64(v[0:8], uint64(r.count))
	binary.BigEndian.PutUint64(v[8:16], uint64(r.last))
	binary.BigEndian.PutUint64(v[16:24], uint64(r.until))
	return v
}

// TakeAttempt implements Attempts in one write transaction.
func (b *Bolt) TakeAttempt(ctx context.Context, key string, now time.Time, l AttemptLimit) (AttemptResult, error) {
	if err := ctxErr(ctx); err != nil {
		return AttemptResult{}, err
	}
	if err := checkLimit(l); err != nil {
		return AttemptResult{}, err
	}
	k := hashID(key)
	var res AttemptResult
	// See PutToken for why the outcome is kept outside the batch function.
	err := b.db.Batch(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketAttempts)
		if err != nil {
			return err
		}
		next, r := decodeAttempt(bk.Get(k[:])).take(now.UnixMilli(), l)
		res = r
		if next == nil {
			return nil
		}
		return bk.Put(k[:], next.encode())
	})
	return res, err
}

// ReturnAttempt implements Attempts.
func (b *Bolt) ReturnAttempt(ctx context.Context, key string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	k := hashID(key)
	return b.db.Batch(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketAttempts)
		if bk == nil {
			return nil
		}
		v := bk.Get(k[:])
		if v == nil {
			return nil
		}
		rec := decodeAttempt(v)
		if rec.count > 0 {
			rec.count--
		}
		return bk.Put(k[:], rec.encode())
	})
}

// ResetAttempts implements Attempts.
func (b *Bolt) ResetAttempts(ctx context.Context, key string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	k := hashID(key)
	return b.db.Batch(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucketAttempts); bk != nil {
			return bk.Delete(k[:])
		}
		return nil
	})
}

// PutFamiliar implements Attempts.
func (b *Bolt) PutFamiliar(ctx context.Context, key string, expires time.Time) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	k := hashID(key)
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(expires.UnixNano()))
	return b.db.Batch(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketFamiliar)
		if err != nil {
			return err
		}
		return bk.Put(k[:], v)
	})
}

// Familiar implements Attempts.
func (b *Bolt) Familiar(ctx context.Context, key string, now time.Time) (bool, error) {
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	k := hashID(key)
	var ok bool
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketFamiliar)
		if bk == nil {
			return nil
		}
		v := bk.Get(k[:])
		ok = len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano()
		return nil
	})
	return ok, err
}

// purgeAttempts deletes ended attempt counts and expired familiar sources; Purge
// calls it in its transaction.
func purgeAttempts(tx *bolt.Tx, now time.Time) (int, error) {
	removed := 0
	for _, bucket := range []struct {
		name  []byte
		ended func(v []byte) bool
	}{
		{bucketAttempts, func(v []byte) bool { return decodeAttempt(v).until <= now.UnixMilli() }},
		{bucketFamiliar, func(v []byte) bool { return len(v) != 8 || int64(binary.BigEndian.Uint64(v)) <= now.UnixNano() }},
	} {
		bk := tx.Bucket(bucket.name)
		if bk == nil {
			continue
		}
		var dead [][]byte
		c := bk.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bucket.ended(v) {
				dead = append(dead, append([]byte(nil), k...))
			}
		}
		for _, k := range dead {
			if err := bk.Delete(k); err != nil {
				return removed, err
			}
		}
		removed += len(dead)
	}
	return removed, nil
}
