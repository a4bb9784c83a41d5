package local

import bolt "go.etcd.io/bbolt"

// DBStats lets the benchmarks report what the database did.
func DBStats(s *Store) bolt.Stats { return s.db.Stats() }
