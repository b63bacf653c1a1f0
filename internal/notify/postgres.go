package notify

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is LISTEN/NOTIFY: Publish runs pg_notify on the shared pool; Run keeps one dedicated
// connection that LISTENs to every subscribed channel and waits for notifications, reconnecting with
// exponential backoff (100 ms to 5 s) when it breaks, then delivering Resync.
//
// Channels are namespaced by a hash of the database and schema, so that clusters (and tests) sharing
// one PostgreSQL server in different schemas never hear each other.
type Postgres struct {
	local  *Local
	pool   *sql.DB
	dsn    string
	prefix string
	log    *slog.Logger

	mu         sync.Mutex
	listened   map[string]bool
	cancelWait context.CancelFunc
	connected  atomic.Bool
}

// NewPostgres prepares a notifier for the database at dsn (pool is the same database's pool, for
// Publish). Call Run in the background.
func NewPostgres(ctx context.Context, pool *sql.DB, dsn string, log *slog.Logger) (*Postgres, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var dbName, schema string
	if err := pool.QueryRowContext(ctx, `SELECT current_database(), current_schema()`).Scan(&dbName, &schema); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	h := sha256.Sum256([]byte(dbName + "\x00" + schema))
	return &Postgres{local: NewLocal(), pool: pool, dsn: dsn, prefix: "gatehouse_" + hex.EncodeToString(h[:5]) + "_", log: log}, nil
}

// Connected reports whether the listener is connected (notifications are flowing).
func (p *Postgres) Connected() bool { return p.connected.Load() }

// Publish sends a notification through PostgreSQL (delivered to every listening instance,
// this one included, after the current transaction of the publishing connection commits).
func (p *Postgres) Publish(ctx context.Context, channel, payload string) error {
	if _, err := p.pool.ExecContext(ctx, `SELECT pg_notify($1, $2)`, p.prefix+channel, payload); err != nil {
		return fmt.Errorf("notify: publish %s: %w", channel, err)
	}
	return nil
}

// Subscribe implements Notifier; a new channel is LISTENed to at once by the running listener.
func (p *Postgres) Subscribe(channel string) (<-chan string, func()) {
	c, cancel := p.local.Subscribe(channel)
	p.mu.Lock()
	if !p.listened[channel] && p.cancelWait != nil {
		p.cancelWait() // wake the listener so it LISTENs to the new channel
	}
	p.mu.Unlock()
	return c, cancel
}

// Run listens until ctx ends.
func (p *Postgres) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	failures := 0
	for ctx.Err() == nil {
		err := p.listen(ctx, func() { backoff, failures = 100*time.Millisecond, 0 })
		p.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			p.log.Warn("change notifications interrupted; polling continues, reconnecting", "err", err, "retry_in", backoff.String(), "consecutive_failures", failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listen runs one connection's life; it returns when the connection fails or ctx ends.
func (p *Postgres) listen(ctx context.Context, healthy func()) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, p.dsn)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	p.mu.Lock()
	p.listened = map[string]bool{}
	p.mu.Unlock()
	first := true
	for {
		if err := p.listenNew(ctx, conn); err != nil {
			return err
		}
		if first {
			// Anything published while we were not listening is lost: everyone reloads.
			first = false
			p.connected.Store(true)
			healthy()
			p.local.deliverAll(Resync)
		}
		p.mu.Lock()
		wctx, wcancel := context.WithCancel(ctx)
		p.cancelWait = wcancel
		pending := p.pendingLocked()
		p.mu.Unlock()
		if pending {
			wcancel()
		}
		n, err := conn.WaitForNotification(wctx)
		p.mu.Lock()
		p.cancelWait = nil
		p.mu.Unlock()
		wcancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() != nil && !conn.IsClosed() {
				continue // woken to LISTEN a new channel
			}
			return fmt.Errorf("wait: %w", err)
		}
		if ch, ok := strings.CutPrefix(n.Channel, p.prefix); ok {
			p.local.deliver(ch, n.Payload)
		}
	}
}

func (p *Postgres) pendingLocked() bool {
	for _, ch := range p.local.channels() {
		if !p.listened[ch] {
			return true
		}
	}
	return false
}

func (p *Postgres) listenNew(ctx context.Context, conn *pgx.Conn) error {
	p.mu.Lock()
	var todo []string
	for _, ch := range p.local.channels() {
		if !p.listened[ch] {
			todo = append(todo, ch)
		}
	}
	p.mu.Unlock()
	for _, ch := range todo {
		if len(p.prefix)+len(ch) > 63 {
			return errors.New("notify: channel name too long: " + ch)
		}
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.prefix + ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
		p.mu.Lock()
		p.listened[ch] = true
		p.mu.Unlock()
	}
	return nil
}
