package store

import "context"

// QueryRawBatched runs reads through a read batcher of its own with the given number of pipelines;
// always: every read through a pipeline, even alone.
func (db *DB) QueryRawBatched(pipelines int, always bool) func(ctx context.Context, q string, args ...any) (RawRows, error) {
	b := newReadBatcher(db, pipelines)
	b.always = always
	return func(ctx context.Context, q string, args ...any) (RawRows, error) { return b.query(ctx, q, args) }
}

// ReadBatchesRunning is the number of pipeline slots taken (0 when idle).
func (db *DB) ReadBatchesRunning() int {
	if db.reads == nil {
		return 0
	}
	db.reads.mu.Lock()
	defer db.reads.mu.Unlock()
	return db.reads.running + len(db.reads.pending)
}

// AlwaysPipelineReads sends every read through a pipeline, even alone.
func (db *DB) AlwaysPipelineReads() { db.reads.always = true }

// QueryRawBuffered streams a read and buffers it whole, as a batch whose write failed does.
func (db *DB) QueryRawBuffered(ctx context.Context, q string, args ...any) (RawRows, error) {
	return bufferRows(db.queryRawPostgres(ctx, q, args))
}
