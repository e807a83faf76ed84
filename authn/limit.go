package authn

import (
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// RateLimits bound how often one source address and one user may run
// ceremony steps (begin and finish of login and registration each count).
// A client over a limit gets 429 with a Retry-After and a clear message.
type RateLimits struct {
	// PerIP is the sustained rate per client address, Burst IPBurst.
	PerIP   rate.Limit
	IPBurst int
	// PerUser is the sustained rate per user (counted once the user is
	// known: at registration begin and at login finish), burst UserBurst.
	PerUser   rate.Limit
	UserBurst int
}

// DefaultRateLimits: 30 steps at once and one every 2 s per address (an
// office behind one NAT address logs in at 9:00); 10 at once and one every
// 6 s per user.
var DefaultRateLimits = RateLimits{
	PerIP: rate.Every(2 * time.Second), IPBurst: 30,
	PerUser: rate.Every(6 * time.Second), UserBurst: 10,
}

// limiter holds one token bucket per key in a bounded LRU, so a flood of
// addresses cannot grow memory without bound.
type limiter struct {
	cfg  RateLimits
	mu   sync.Mutex
	ip   *lru.Cache[string, *rate.Limiter]
	user *lru.Cache[string, *rate.Limiter]
}

const limiterEntries = 65536

func newLimiter(cfg RateLimits) (*limiter, error) {
	if cfg.IPBurst <= 0 || cfg.UserBurst <= 0 || cfg.PerIP <= 0 || cfg.PerUser <= 0 {
		return nil, fmt.Errorf("rate limits must be positive: %+v", cfg)
	}
	ip, err := lru.New[string, *rate.Limiter](limiterEntries)
	if err != nil {
		return nil, fmt.Errorf("making rate limiter: %w", err)
	}
	user, err := lru.New[string, *rate.Limiter](limiterEntries)
	if err != nil {
		return nil, fmt.Errorf("making rate limiter: %w", err)
	}
	return &limiter{cfg: cfg, ip: ip, user: user}, nil
}

func (l *limiter) get(c *lru.Cache[string, *rate.Limiter], key string, r rate.Limit, burst int) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := c.Get(key)
	if !ok {
		lim = rate.NewLimiter(r, burst)
		c.Add(key, lim)
	}
	return lim
}

// allowIP spends one token of addr's bucket at now.
func (l *limiter) allowIP(addr string, now time.Time) bool {
	return l.get(l.ip, addr, l.cfg.PerIP, l.cfg.IPBurst).AllowN(now, 1)
}

// allowUser spends one token of user's bucket at now.
func (l *limiter) allowUser(user string, now time.Time) bool {
	return l.get(l.user, user, l.cfg.PerUser, l.cfg.UserBurst).AllowN(now, 1)
}
