// Package projections holds the read side: the inquiry screens' views and
// how an event becomes rows in them.
//
//   - [Apply] is the one pure function from an event (its stream sequence and
//     index in the message) to row changes ([Change]: AddHistory, SetErrors,
//     PutInstitution, …). Every store applies the same changes, so the stores
//     cannot disagree about what an event means.
//   - [Memory] keeps the views in process (the embedded default, rebuilt at
//     start); [Postgres] keeps them in PostgreSQL (schema proj, migrations in
//     package schema), one transaction per group of messages with the
//     checkpoint in the same transaction, so a message's rows and the
//     position that says they are there commit or vanish together.
//   - Both implement [Writer] (Apply, Position) for the projector and
//     [Reader] for the HTTP queries; every answer carries the stream
//     sequence it reflects, and lists ([List]) page with opaque continuation
//     cursors.
//   - Each PostgreSQL table is described once (tables.go: name, key,
//     columns, a row's values): the live inserts, the rebuild's COPY and the
//     SELECT lists read that description, and rows come back through
//     pgx.RowToStructByName by the rows' db tags.
//   - A rebuild folds the stream into a Memory and swaps it in whole
//     ([Memory.Replace]) or COPYs it into a shadow schema that replaces the
//     live one in one transaction ([Postgres.Replace]).
//
// Where the views come from: package consumers reads the journal and calls
// a Writer; domain.md §8 says what each screen shows.
package projections
