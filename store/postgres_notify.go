package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backoff between listener reconnections.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// Subscribe delivers changes made by any replica on this schema. The
// first call opens a dedicated connection that LISTENs, and returns once
// it listens, so no change committed after Subscribe returns is missed.
// If that connection breaks it is reopened with backoff, and every
// subscriber then gets ChangeResync, since notifications sent while it
// was down are lost.
func (p *Postgres) Subscribe(ctx context.Context) (<-chan Change, error) {
	if err := p.startListener(ctx); err != nil {
		return nil, fmt.Errorf("subscribing to postgres changes: %w", err)
	}
	return p.hub.subscribe(ctx)
}

// Publish sends c to every replica's subscribers (this one's included).
func (p *Postgres) Publish(ctx context.Context, c Change) error {
	if err := p.notify(ctx, p.pool, c); err != nil {
		return fmt.Errorf("publishing %s change: %w", c.Kind, err)
	}
	return nil
}

func (p *Postgres) startListener(ctx context.Context) error {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	if p.running {
		return nil
	}
	if p.lctx.Err() != nil {
		return errClosed
	}
	conn, err := p.listen(ctx)
	if err != nil {
		return err
	}
	p.running = true
	p.lwg.Add(1)
	go p.listenLoop(conn)
	return nil
}

// listen opens a connection outside the pool and LISTENs on the channel.
func (p *Postgres) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg := p.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "sekisho-listener"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting listener: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listening on %s: %w", p.channel, err)
	}
	return conn, nil
}

// listenLoop forwards notifications to the hub until Close.
func (p *Postgres) listenLoop(conn *pgx.Conn) {
	defer p.lwg.Done()
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		// After heartbeat of silence, ping: a connection lost without a
		// reset (a failed-over database, a dropped NAT entry) is noticed
		// and replaced.
		wctx, cancel := context.WithTimeout(p.lctx, p.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && p.lctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			// Silence: a timeout leaves the connection usable; check it.
			pctx, cancel := context.WithTimeout(p.lctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		if err == nil {
			var c Change
			if json.Unmarshal([]byte(n.Payload), &c) != nil || c.Kind == "" {
				c = Change{Kind: ChangeResync}
			}
			p.hub.publish(c)
			continue
		}
		if p.lctx.Err() != nil {
			return
		}
		conn.Close(context.Background())
		conn = nil
		for backoff := listenBackoffMin; conn == nil; backoff = min(2*backoff, listenBackoffMax) {
			select {
			case <-p.lctx.Done():
				return
			case <-time.After(backoff):
			}
			conn, _ = p.listen(p.lctx)
		}
		p.hub.publish(Change{Kind: ChangeResync})
	}
}
