package memorystore

import (
	"slices"
	"time"
)

// sweepRound is how long the sweep takes to visit every shard once: a
// session that expired is found by Lookup at once, and leaves memory (and
// the persist file, and Count) within this.
const sweepRound = time.Minute

// start runs the store's two background goroutines, the housekeeper and
// the folder, ended by Destruct.
func (s *sharedStore) start() {
	go s.housekeep()
	go s.folder()
}

// foldTick is how often the folder looks whether a fold is due.
const foldTick = 250 * time.Millisecond

// folder folds the journal into the persist file every foldEvery, or
// sooner when a write finds the journal filling (kickFold). It runs
// beside the housekeeper, so that a long sweep or trim never lets the
// journal fill up under a storm of logins.
func (s *sharedStore) folder() {
	defer close(s.foldDone)
	t := time.NewTicker(foldTick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.disk.foldKick:
		}
		s.disk.fold(false)
	}
}

// housekeep sweeps one shard per tick, so that a round of all of them
// takes sweepRound, and enforces the session limit when a login asks.
// Each step holds one shard's lock at a time, never two, and writes what
// it removed to the persist file in the background.
func (s *sharedStore) housekeep() {
	defer close(s.done)
	t := time.NewTicker(sweepRound / numShards)
	defer t.Stop()
	next := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.shards[next].DeleteExpired()
			if next++; next == numShards {
				next = 0
				s.results.DeleteExpired()
				s.prevKeys.DeleteExpired()
			}
		case <-s.trimKick:
			s.trimToLimit()
		case done := <-s.settleReq:
			for _, sh := range s.shards {
				sh.DeleteExpired()
			}
			s.results.DeleteExpired()
			s.prevKeys.DeleteExpired()
			s.trimToLimit()
			s.disk.flush(s)
			s.disk.fold(true)
			close(done)
			continue
		}
		s.disk.flush(s)
	}
}

// kickTrim asks the housekeeper to enforce the session limit; the login
// that crossed it does not wait for that.
func (s *sharedStore) kickTrim() {
	select {
	case s.trimKick <- struct{}{}:
	default: // already asked
	}
}

// settle runs a full round of housekeeping now and returns when it is
// done: every shard swept, the limit enforced, the removals written.
// Tests use it to check Count exactly.
func (s *sharedStore) settle() {
	done := make(chan struct{})
	select {
	case s.settleReq <- done:
		<-done
	case <-s.done:
	}
}

// trimToLimit drops the oldest sessions while there are more than
// maxSessions. Under a fixed TTL the oldest session is the one that
// expires first, so go-cache's expiries give the order. A FIFO of token
// hashes would cost 32 bytes per session; instead the expiries of a
// sample of the shards (all of them in a small store) give the cut-off
// that removes the sessions over the limit and a batch of 1/128 of the
// limit beyond (token hashes are uniform, so every shard is a fair
// sample), and one pass over the shards removes what expires by then. At
// 1M sessions that runs once per ~8k logins at the limit.
//
// Only the housekeeper calls it; no request waits for it. It holds one
// shard's lock at a time, and rests between shards (restFactor). Logins during the pass can
// overshoot the limit by as many sessions as they make meanwhile.
func (s *sharedStore) trimToLimit() {
	for range 3 { // (a sample's estimate can fall short: go again)
		limit := int(s.maxSessions.Load())
		if int(s.size.Load()) <= limit {
			return
		}
		cut := s.trimCutoff(limit)
		big := s.size.Load() > trimExact
		for _, sh := range s.shards {
			t0 := time.Now()
			sh.DeleteExpired()
			for k, it := range sh.Items() {
				if it.Expiration <= cut || it.Object.(*memUser).u.Load() == nil { // (a tie at the cut-off goes too; revoked: dead already)
					sh.Delete(k)
				}
			}
			if big {
				s.rest(time.Since(t0))
			}
		}
	}
}

// trimSample is how many shards trimToLimit samples once the store holds
// more than trimExact sessions; below, it looks at all of them.
const (
	trimSample = 16
	trimExact  = 64 << 10
)

// restFactor is how long the housekeeper rests after a piece of a long
// job (a shard of a trim, a chunk of removals written to the file),
// relative to how long the piece took: with 4, such a job uses a core a
// fifth of the time. On a machine of two cores a busy housekeeper would
// otherwise share a core with the requests for the whole job; it takes
// five times longer instead, and nothing waits for it.
const restFactor = 4

// trimCutoff estimates the expiry at or before which sessions must go for
// the live ones to fall a batch below limit. The sample gives the order
// of the expiries; how many live sessions there are comes from the
// counters (scaling a sample of whole shards up would be off by about
// sqrt(n/256) per shard, a couple of batches at 100k).
func (s *sharedStore) trimCutoff(limit int) int64 {
	shards := numShards
	if s.size.Load() > trimExact {
		shards = trimSample
	}
	var exps []int64
	first := int(time.Now().UnixNano() % numShards) // (not always the same sample)
	for i := range shards {
		sh := s.shards[(first+i*numShards/shards)%numShards]
		for _, it := range sh.Items() {
			if it.Object.(*memUser).u.Load() != nil {
				exps = append(exps, it.Expiration)
			}
		}
	}
	live := len(exps) // (every shard: exact)
	if shards < numShards {
		s.mu.Lock()
		live = int(s.size.Load()) - s.revoked
		s.mu.Unlock()
	}
	want := live - limit + limit/128
	if want <= 0 || len(exps) == 0 {
		return -1 << 63 // only expired and revoked ones go
	}
	slices.Sort(exps)
	return exps[min(len(exps), (want*len(exps)+live-1)/live)-1]
}

// rest waits restFactor times took, unless the store is stopping.
func (s *sharedStore) rest(took time.Duration) {
	t := time.NewTimer(restFactor * took)
	defer t.Stop()
	select {
	case <-s.stop:
	case <-t.C:
	}
}
