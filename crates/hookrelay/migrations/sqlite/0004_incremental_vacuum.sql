-- no-transaction
-- Retention deletes old rows; in INCREMENTAL mode the freed pages can be given back to the
-- file system (`PRAGMA incremental_vacuum`) so the file does not only ever grow. The mode of
-- an existing database changes only through a VACUUM, which rewrites the whole file once
-- (instant on a new database; on a large one it takes a while and needs as much free disk
-- space as the file). VACUUM cannot run inside a transaction, hence the line above.
PRAGMA auto_vacuum = INCREMENTAL;
VACUUM;
