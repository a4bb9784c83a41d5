package local

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/imgpipe/imgpipe/store"
)

// Buckets of meta.db. Records are JSON; indexes hold keys only; small
// blobs are raw bytes.
var (
	bucketImages       = []byte("images")           // image id -> image JSON
	bucketImagesByTime = []byte("images_by_time")   // timeKey(created) + id -> nil
	bucketImagesByStat = []byte("images_by_status") // status -> (timeKey(created) + id -> nil)
	bucketEvents       = []byte("events")           // event id -> event JSON (also the dedup set)
	bucketEventsByImg  = []byte("events_by_image")  // imagePrefix(image id) + timeKey + event id -> nil
	bucketEventsByTime = []byte("events_by_time")   // timeKey + event id -> nil
	bucketBlobs        = []byte("blobs")            // SHA-256 of blob key -> bucket{blobDataKey -> bytes}, small blobs only
)

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketImages, bucketImagesByTime, bucketImagesByStat, bucketEvents, bucketEventsByImg, bucketEventsByTime, bucketBlobs} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// timeKeyLen is the size of an encoded time: 8 bytes of seconds, 4 of
// nanoseconds. Seconds rather than UnixNano so that any time.Time, even the
// zero one (year 1, outside UnixNano's range), sorts correctly.
const timeKeyLen = 12

// appendTime appends t so that byte order is time order: big-endian
// seconds with the sign bit flipped (negative seconds sort first), then
// nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// timeIDKey is the key of a time index: time then id, so entries with the
// same time are ordered by id.
func timeIDKey(t time.Time, id string) []byte {
	b := make([]byte, 0, timeKeyLen+len(id))
	return append(appendTime(b, t), id...)
}

// imagePrefix starts every key of one image in events_by_image. The length
// prefix keeps image "a" from matching the keys of image "ab".
func imagePrefix(imageID string) []byte {
	b := make([]byte, 0, 4+len(imageID))
	b = binary.BigEndian.AppendUint32(b, uint32(len(imageID)))
	return append(b, imageID...)
}

// cursorTag marks local cursors, so that a cursor made by another store (or
// a hand-made one) is refused rather than misread.
const cursorTag = 'L'

// encodeCursor makes Page.Next from the index key of the last image returned.
func encodeCursor(key []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{cursorTag}, key...))
}

// decodeCursor returns the index key a cursor resumes after.
func decodeCursor(cursor string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 1+timeKeyLen+1 || b[0] != cursorTag {
		return nil, store.ErrBadCursor
	}
	return b[1:], nil
}
