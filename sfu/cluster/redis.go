package cluster

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTuning is what a client of the cluster's Redis changes from go-redis's defaults.
type redisTuning struct {
	timeout   time.Duration // dial, read, write and pool wait; 0: the defaults
	noRetries bool          // a retry would outlast the caller's deadline
}

// newRedis is a client of the Redis at url: redis://[user:password@]host:port/db (rediss:// for TLS), or a
// Sentinel's address with the master's name, redis://sentinel:26379/0?master_name=NAME[&addr=sentinel2:26379...],
// whose client follows the master the Sentinels name. Every call's context bounds its reads and writes too.
func newRedis(url string, tune redisTuning) (*redis.Client, error) {
	if strings.Contains(url, "master_name=") {
		o, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, fmt.Errorf("cluster: parse the Sentinel URL: %w", err)
		}
		tune.apply(&o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout)
		return redis.NewFailoverClient(o), nil
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster: parse redis URL: %w", err)
	}
	tune.apply(&o.ContextTimeoutEnabled, &o.MaxRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout)
	return redis.NewClient(o), nil
}

// apply sets the fields of either kind of go-redis options.
func (t redisTuning) apply(contextTimeout *bool, maxRetries *int, timeouts ...*time.Duration) {
	*contextTimeout = true
	if t.noRetries {
		*maxRetries = -1
	}
	if t.timeout > 0 {
		for _, d := range timeouts {
			*d = t.timeout
		}
	}
}
