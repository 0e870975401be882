package couch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	kivik "github.com/go-kivik/kivik/v4"
)

// A snapshot of the lookup index lets a restart skip the `_all_docs` scan:
// the index is loaded as it was at a feed sequence, then caught up through
// `_changes` from that sequence (see Index.Bootstrap). Its format is
// binary and versioned; anything unexpected (another version, another
// database, a bad checksum, a short read) makes it unusable, and the index
// is then built by the full scan, as without a snapshot.
//
// Layout (integers are unsigned varints unless said otherwise):
//
//	magic "SGIDX" | version | len+seq | len+main db name
//	n | n sorted doc id hashes (8 bytes LE each)
//	n | n sorted shortcode hashes (8 bytes LE each)
//	n | n × (key hash (8 bytes LE) | len+contact id)
//	CRC-32 (IEEE) of all the above (4 bytes LE)

// snapshotMagic opens every snapshot.
const snapshotMagic = "SGIDX"

// SnapshotVersion is the snapshot format (and hash function) version: a
// snapshot of another version is ignored.
const SnapshotVersion = 1

// SnapshotID is the doc of the sentinel db holding the snapshot as its
// attachment snapshotFile. An attachment rather than `_local` docs: it may
// be tens of MB, over CouchDB's max_document_size for a doc body; its old
// revisions go with the db's compaction.
const SnapshotID = "sentinel-go-lookup-index"

// snapshotFile is the attachment's name.
const snapshotFile = "index.bin"

// Bounds of a decoded snapshot: a length over them means corruption.
const (
	maxSnapshotString = 1 << 16
	maxSnapshotCount  = 1 << 32
)

// errSnapshot marks an unusable snapshot.
var errSnapshot = errors.New("unusable lookup index snapshot")

// keyPair files a contact id under a key hash.
type keyPair struct {
	Key uint64
	ID  string
}

// snapshot is the index's state as stored: the ids and shortcodes it has
// seen (hashes, sorted), the contacts' keys, and the feed sequence from
// which the changes are to be read again to bring it up to date.
type snapshot struct {
	Seq  string
	DB   string
	IDs  []uint64
	Used []uint64
	Keys []keyPair
}

// size is about the length of s encoded (a little over), to size buffers.
func (s snapshot) size() int {
	n := 64 + len(s.Seq) + len(s.DB) + 8*(len(s.IDs)+len(s.Used))
	for _, p := range s.Keys {
		n += 8 + 3 + len(p.ID)
	}
	return n
}

// encode writes s in the snapshot format.
func (s snapshot) encode(w io.Writer) error {
	crc := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	var buf [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	str := func(v string) { uvarint(uint64(len(v))); bw.WriteString(v) }
	u64 := func(v uint64) { binary.LittleEndian.PutUint64(buf[:8], v); bw.Write(buf[:8]) }
	bw.WriteString(snapshotMagic)
	uvarint(SnapshotVersion)
	str(s.Seq)
	str(s.DB)
	for _, set := range [][]uint64{s.IDs, s.Used} {
		uvarint(uint64(len(set)))
		for _, h := range set {
			u64(h)
		}
	}
	uvarint(uint64(len(s.Keys)))
	for _, p := range s.Keys {
		u64(p.Key)
		str(p.ID)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// snapshotReader reads the snapshot format, checksumming what it reads.
type snapshotReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	err error
	// size is the snapshot's length when known (else 0).
	size int
}

func (r *snapshotReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *snapshotReader) full(p []byte) {
	if r.err != nil {
		return
	}
	if _, err := io.ReadFull(r.r, p); err != nil {
		r.fail(err)
		return
	}
	r.crc.Write(p)
}

func (r *snapshotReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var b [binary.MaxVarintLen64]byte
	for i := range b {
		c, err := r.r.ReadByte()
		if err != nil {
			r.fail(err)
			return 0
		}
		b[i] = c
		if c < 0x80 {
			r.crc.Write(b[:i+1])
			v, n := binary.Uvarint(b[:i+1])
			if n <= 0 {
				r.fail(errors.New("bad varint"))
			}
			return v
		}
	}
	r.fail(errors.New("varint too long"))
	return 0
}

func (r *snapshotReader) count(limit uint64) int {
	n := r.uvarint()
	if n > limit {
		r.fail(fmt.Errorf("length %d over %d", n, limit))
		return 0
	}
	return int(n)
}

func (r *snapshotReader) str() string {
	b := make([]byte, r.count(maxSnapshotString))
	r.full(b)
	return string(b)
}

func (r *snapshotReader) u64() uint64 {
	var b [8]byte
	r.full(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// sortedSet reads a set of hashes, which must be strictly ascending. Its
// slice is allocated at once when the snapshot's size allows that many
// (no growing copies), else grows as it is read: a corrupt count cannot
// allocate much.
func (r *snapshotReader) sortedSet() []uint64 {
	n := r.count(maxSnapshotCount)
	out := make([]uint64, 0, min(n, max(1<<16, r.size/8)))
	for i := 0; i < n && r.err == nil; i++ {
		h := r.u64()
		if len(out) > 0 && h <= out[len(out)-1] {
			r.fail(errors.New("hashes out of order"))
		}
		out = append(out, h)
	}
	return slices.Clip(out)
}

// decodeSnapshot reads a snapshot written by encode, of size bytes when
// known (else 0); any error wraps errSnapshot.
func decodeSnapshot(in io.Reader, size int64) (snapshot, error) {
	r := &snapshotReader{r: bufio.NewReaderSize(in, 64<<10), crc: crc32.NewIEEE(), size: int(min(max(size, 0), maxSnapshotCount))}
	magic := make([]byte, len(snapshotMagic))
	r.full(magic)
	if r.err == nil && string(magic) != snapshotMagic {
		return snapshot{}, fmt.Errorf("%w: not a snapshot", errSnapshot)
	}
	if v := r.uvarint(); r.err == nil && v != SnapshotVersion {
		return snapshot{}, fmt.Errorf("%w: version %d, not %d", errSnapshot, v, SnapshotVersion)
	}
	var s snapshot
	s.Seq = r.str()
	s.DB = r.str()
	s.IDs = r.sortedSet()
	s.Used = r.sortedSet()
	n := r.count(maxSnapshotCount)
	s.Keys = make([]keyPair, 0, min(n, 1<<16))
	for i := 0; i < n && r.err == nil; i++ {
		k := r.u64()
		s.Keys = append(s.Keys, keyPair{Key: k, ID: r.str()})
	}
	if r.err != nil {
		return snapshot{}, fmt.Errorf("%w: %w", errSnapshot, r.err)
	}
	want := r.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(r.r, sum[:]); err != nil {
		return snapshot{}, fmt.Errorf("%w: %w", errSnapshot, err)
	}
	if binary.LittleEndian.Uint32(sum[:]) != want {
		return snapshot{}, fmt.Errorf("%w: checksum mismatch", errSnapshot)
	}
	if _, err := r.r.ReadByte(); !errors.Is(err, io.EOF) {
		return snapshot{}, fmt.Errorf("%w: trailing bytes", errSnapshot)
	}
	return s, nil
}

// readSnapshot loads the snapshot stored in db (the sentinel db): ErrNotFound
// when there is none, errSnapshot when it is unusable.
func readSnapshot(ctx context.Context, db *DB) (snapshot, error) {
	att, err := db.k.GetAttachment(ctx, SnapshotID, snapshotFile)
	if err != nil {
		return snapshot{}, db.wrap("read lookup index snapshot", err)
	}
	defer att.Content.Close()
	s, err := decodeSnapshot(att.Content, att.Size)
	if err != nil && !errors.Is(err, errSnapshot) {
		err = db.wrap("read lookup index snapshot", err)
	}
	return s, err
}

// writeSnapshot stores data as the snapshot attachment in db, over the
// revision rev ("" when unknown); it returns the new revision. A conflict
// (rev stale or unknown) is resolved by reading the current one once: the
// snapshot has one writer at a time, the newest write wins.
func writeSnapshot(ctx context.Context, db *DB, rev string, data []byte) (string, error) {
	for attempt := 0; ; attempt++ {
		var opts []kivik.Option
		if rev != "" {
			opts = append(opts, kivik.Rev(rev))
		}
		att := &kivik.Attachment{Filename: snapshotFile, ContentType: "application/octet-stream",
			Content: io.NopCloser(bytes.NewReader(data)), Size: int64(len(data))}
		newRev, err := db.k.PutAttachment(ctx, SnapshotID, att, opts...)
		if err == nil {
			return newRev, nil
		}
		err = db.wrap("write lookup index snapshot", err)
		if !errors.Is(err, ErrConflict) || attempt > 0 {
			return "", err
		}
		cur, gerr := db.Get(ctx, SnapshotID)
		if gerr != nil {
			return "", gerr
		}
		rev, _ = cur["_rev"].(string)
	}
}

// seqOrZero is a snapshot's seq as `since`.
func seqOrZero(seq string) string {
	if strings.TrimSpace(seq) == "" {
		return "0"
	}
	return seq
}
