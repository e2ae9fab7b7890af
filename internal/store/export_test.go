package store

import "github.com/redis/go-redis/v9"

// ClientOf is the store's client, for tests that watch the commands it sends.
func ClientOf(r *Redis) redis.UniversalClient { return r.client }
