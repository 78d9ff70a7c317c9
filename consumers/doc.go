// Package consumers feeds the projections from the journal: [Projector], the
// live projector (a Watermill router over a durable JetStream consumer,
// explicit ack after the store's commit, retries with backoff, a recoverer,
// and quarantine instead of silent drops), [ReadStream], the bulk ordered
// read, and [Rebuild] / [RebuildMemory], which fold the whole stream and swap
// the views atomically.
package consumers
