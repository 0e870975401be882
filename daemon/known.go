package daemon

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/pipeline"
	"sentinel-go/transitions"
)

// KnownDocID keeps the revisions the engine found done (pipeline.Known)
// from one run to the next, so that after a restart a feed read again from
// an old checkpoint (a crash, a checkpoint deleted, a cluster's rewind)
// passes them over without reading their info docs. A `_local` doc: neither
// replicated nor listed, so CHT's tools never see it.
const KnownDocID = "_local/sentinel-go-known"

// knownMaxSaved bounds the entries saved (8 bytes each, base64 in the doc:
// 500,000 make 5.3 MB, under CouchDB's default max_document_size of 8 MB).
const knownMaxSaved = 500_000

// knownEvery is how often the set is saved while it grows (and at stop).
const knownEvery = time.Minute

// knownStore saves and loads the Known set of this build.
type knownStore struct {
	db    *couch.DB
	build string // entries of another build are not trusted: its prefilters may differ
	rev   string
	saved int // entries at the last save
	at    time.Time
	log   zerolog.Logger
}

func newKnownStore(db *couch.DB, log zerolog.Logger) *knownStore {
	bi := ReadBuildInfo()
	build := bi.Version + " " + bi.Revision
	if bi.Modified {
		build += " modified"
	}
	return &knownStore{db: db, build: build, at: time.Now(), log: log}
}

// load imports the saved set when it was made by this build under cfg.
func (s *knownStore) load(ctx context.Context, k *pipeline.Known, cfg *transitions.Config) {
	doc, err := s.db.Get(ctx, KnownDocID)
	if err != nil {
		if !errors.Is(err, couch.ErrNotFound) {
			s.log.Warn().Err(err).Msg("Cannot read the revisions known done; they are found again")
		}
		return
	}
	s.rev, _ = doc["_rev"].(string)
	fp, _ := doc["fingerprint"].(string)
	build, _ := doc["build"].(string)
	if fp != cfg.Fingerprint || build != s.build {
		s.log.Debug().Msg("The revisions known done were saved under another config or build: not used")
		return
	}
	data, _ := doc["keys"].(string)
	keys, err := decodeKnown(data)
	if err != nil {
		s.log.Warn().Err(err).Msg("The saved revisions known done are unreadable; they are found again")
		return
	}
	k.Import(fp, keys)
	s.saved, s.at = len(keys), time.Now()
	s.log.Info().Int("revisions", len(keys)).Msg("Loaded the revisions known done")
}

// saveIfDue saves the set when it grew and the last save is knownEvery old.
func (s *knownStore) saveIfDue(ctx context.Context, k *pipeline.Known) {
	if time.Since(s.at) < knownEvery || k.Len() == s.saved {
		return
	}
	s.save(ctx, k)
}

// save writes the set (at most knownMaxSaved entries); a failure costs only
// reads after the next restart, so it is logged and passed over.
func (s *knownStore) save(ctx context.Context, k *pipeline.Known) {
	keys, fp := k.Export()
	s.at = time.Now()
	if fp == "" || len(keys) == s.saved {
		return
	}
	if len(keys) > knownMaxSaved {
		keys = keys[:knownMaxSaved]
	}
	for attempt := 0; attempt < 2; attempt++ {
		doc := couch.Doc{"_id": KnownDocID, "fingerprint": fp, "build": s.build, "count": len(keys), "keys": encodeKnown(keys)}
		if s.rev != "" {
			doc["_rev"] = s.rev
		}
		err := s.db.Put(ctx, doc)
		if err == nil {
			s.rev, _ = doc["_rev"].(string)
			s.saved = len(keys)
			return
		}
		if !errors.Is(err, couch.ErrConflict) {
			s.log.Debug().Err(err).Msg("Cannot save the revisions known done")
			return
		}
		cur, gerr := s.db.Get(ctx, KnownDocID)
		s.rev = ""
		if gerr == nil {
			s.rev, _ = cur["_rev"].(string)
		}
	}
}

// encodeKnown is keys as base64 of 8-byte little-endian words.
func encodeKnown(keys []uint64) string {
	b := make([]byte, 8*len(keys))
	for i, k := range keys {
		binary.LittleEndian.PutUint64(b[8*i:], k)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// decodeKnown reverses encodeKnown.
func decodeKnown(s string) ([]uint64, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode known revisions: %w", err)
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("decode known revisions: %d bytes is not a whole number of entries", len(b))
	}
	keys := make([]uint64, len(b)/8)
	for i := range keys {
		keys[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return keys, nil
}
