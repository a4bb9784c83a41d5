package mongo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store/mongo"
)

// rawDatabase connects to the database of uri directly, to look at or
// tamper with what the store wrote.
func rawDatabase(t *testing.T, uri string) *driver.Database {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	name := u.Path[1:]
	if name == "" {
		name = mongo.DefaultDatabase
	}
	client, err := driver.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(name)
}

func count(t *testing.T, coll *driver.Collection, filter bson.D) int64 {
	t.Helper()
	n, err := coll.CountDocuments(t.Context(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDefaultDatabase(t *testing.T) {
	s := openStore(t, serverURI) // no database in the path
	defer s.Close()
	if err := s.PutImage(t.Context(), &model.Image{ID: "default-db", Status: model.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, rawDatabase(t, serverURI).Collection("images"), bson.D{{Key: "_id", Value: "default-db"}}); n != 1 {
		t.Fatalf("image not in database %q", mongo.DefaultDatabase)
	}
}

// A writer that crashed mid-upload leaves chunks and no files document; the
// next write of the key must not trip over them.
func TestOrphanChunks(t *testing.T) {
	uri := newDatabaseURI(t)
	s := openStore(t, uri)
	defer s.Close()
	chunks := rawDatabase(t, uri).Collection("blobs.chunks")
	key := model.OriginalKey("orphaned")
	for n := range 3 {
		_, err := chunks.InsertOne(t.Context(), bson.D{
			{Key: "files_id", Value: key}, {Key: "n", Value: int32(n)},
			{Key: "data", Value: bson.Binary{Data: []byte("stale")}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.HasBlob(t.Context(), key); err != nil || ok {
		t.Fatalf("HasBlob with only orphan chunks = %v, %v; want false", ok, err)
	}
	data := bytes.Repeat([]byte("fresh"), 100)
	if err := s.PutBlob(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBlob(t.Context(), key)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBlob = %d bytes, %v", len(got), err)
	}
	if n := count(t, chunks, bson.D{{Key: "files_id", Value: key}}); n != 1 {
		t.Fatalf("%d chunks, want 1", n)
	}
}

// A writer that died holding a key's lease blocks others only until the
// lease expires; a live lease makes them wait.
func TestLeases(t *testing.T) {
	uri := newDatabaseURI(t)
	s := openStore(t, uri)
	defer s.Close()
	leases := rawDatabase(t, uri).Collection("blobs.leases")
	held, expired := model.OriginalKey("held"), model.OriginalKey("expired")
	for key, expires := range map[string]time.Time{held: time.Now().Add(time.Hour), expired: time.Now().Add(-time.Second)} {
		if _, err := leases.InsertOne(t.Context(), bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: "dead"}, {Key: "expires", Value: expires}}); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.PutBlob(t.Context(), expired, []byte("x")); err != nil {
		t.Fatalf("PutBlob under an expired lease: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := s.PutBlob(ctx, held, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PutBlob under a live lease: err = %v, want a deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.PutBlob(t.Context(), held, []byte("y")) }()
	time.Sleep(100 * time.Millisecond)
	if _, err := leases.DeleteOne(t.Context(), bson.D{{Key: "_id", Value: held}}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("PutBlob after the lease went: %v", err)
	}
	if n := count(t, leases, bson.D{}); n != 0 {
		t.Fatalf("%d leases left after the writes", n)
	}
}

// An upload cut short leaves no files document: readers see the old state
// (here: nothing) or the whole new blob, never a part.
func TestInterruptedUpload(t *testing.T) {
	uri := newDatabaseURI(t)
	s := openStore(t, uri)
	defer s.Close()
	key := model.OriginalKey("interrupted")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: four chunks
	failed := 0
	for timeout := time.Millisecond; timeout < 2*time.Second && failed < 5; timeout *= 2 {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		err := s.PutBlob(ctx, key, data)
		cancel()
		t.Logf("timeout %v: %v", timeout, err)
		got, getErr := s.GetBlob(t.Context(), key)
		switch {
		case err == nil:
			if getErr != nil || !bytes.Equal(got, data) {
				t.Fatalf("after a successful write: GetBlob = %d bytes, %v", len(got), getErr)
			}
			return
		case getErr == nil:
			t.Fatalf("write failed (%v) yet GetBlob returned %d bytes", err, len(got))
		}
		failed++
	}
	// Then a write with time enough succeeds, whatever the failed ones
	// left running on the server.
	if err := s.PutBlob(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetBlob(t.Context(), key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBlob = %d bytes, %v", len(got), err)
	}
}

// A writer whose lease ran out and who carries on (stalled past its expiry,
// then resumed) cannot remove or replace the file its successor completed:
// its failed upload cleans up only its own documents, and it renews the
// lease, which fails, before clearing the key.
func TestStaleWriterCannotRemoveSuccessorsFile(t *testing.T) {
	uri := newDatabaseURI(t)
	s := openStore(t, uri)
	defer s.Close()
	chunks := rawDatabase(t, uri).Collection("blobs.chunks")

	// The successor's file is empty (no chunks): the stale writer's chunks
	// all land, and its files document is the insert that fails.
	empty := model.ResultKey("fenced", "empty")
	if err := s.PutBlob(t.Context(), empty, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadAs(t.Context(), empty, bytes.Repeat([]byte("s"), 300<<10), "stale"); !driver.IsDuplicateKeyError(err) {
		t.Fatalf("stale upload over a complete file: %v, want a duplicate key", err)
	}
	if got, err := s.GetBlob(t.Context(), empty); err != nil || len(got) != 0 {
		t.Fatalf("the successor's file after the stale upload failed: %d bytes, %v", len(got), err)
	}
	if n := count(t, chunks, bson.D{{Key: "files_id", Value: empty}}); n != 0 {
		t.Errorf("%d chunks of the stale upload left behind", n)
	}

	// A file with chunks: the stale writer's first chunk collides.
	key := model.OriginalKey("fenced")
	data := bytes.Repeat([]byte("successor"), 100<<10)
	if err := s.PutBlob(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadAs(t.Context(), key, data, "stale"); err == nil {
		t.Fatal("stale upload over a complete file: no error")
	}
	// Its lease gone, it does not clear the key to write its own version.
	if err := s.PutLeasedAs(t.Context(), key, []byte("stale version"), "stale"); err == nil || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("stale writer's put: %v, want the lease lost", err)
	}
	if got, err := s.GetBlob(t.Context(), key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the successor's file after the stale writer: %d bytes, %v", len(got), err)
	}
}

// A blob whose bytes changed behind the store's back is refused, not served.
func TestCorruptBlob(t *testing.T) {
	uri := newDatabaseURI(t)
	s := openStore(t, uri)
	defer s.Close()
	key := model.OriginalKey("corrupt")
	if err := s.PutBlob(t.Context(), key, []byte("original bytes")); err != nil {
		t.Fatal(err)
	}
	chunks := rawDatabase(t, uri).Collection("blobs.chunks")
	_, err := chunks.UpdateOne(t.Context(), bson.D{{Key: "files_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "data", Value: bson.Binary{Data: []byte("tampered bytes")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBlob(t.Context(), key); err == nil {
		t.Fatal("GetBlob of a tampered blob: no error")
	}
}

// A files document whose chunks are gone (a timed-out upload's last insert
// landing after its cleanup) must not pass for the blob on the next write.
func TestMissingChunksRewritten(t *testing.T) {
	uri := newDatabaseURI(t)
	s := openStore(t, uri)
	defer s.Close()
	key := model.OriginalKey("chunkless")
	data := bytes.Repeat([]byte("x"), 300<<10) // two chunks
	if err := s.PutBlob(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	chunks := rawDatabase(t, uri).Collection("blobs.chunks")
	if _, err := chunks.DeleteOne(t.Context(), bson.D{{Key: "files_id", Value: key}, {Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBlob(t.Context(), key); err == nil {
		t.Fatal("GetBlob with a chunk missing: no error")
	}
	if err := s.PutBlob(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetBlob(t.Context(), key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBlob after rewrite = %d bytes, %v", len(got), err)
	}
}

// Blobs are plain GridFS files: the driver's own bucket reads them back,
// chunk by chunk. And a small blob costs memory in proportion to its size:
// the driver's upload stream, which the store no longer uses for that
// reason, allocated 16 MiB per file.
func TestBlobsAreGridFSFiles(t *testing.T) {
	uri := newDatabaseURI(t)
	s := openStore(t, uri)
	defer s.Close()
	data := make([]byte, 600<<10) // three chunks, the last one short
	for i := range data {
		data[i] = byte(i * 7)
	}
	key := model.OriginalKey("gridfs")
	if err := s.PutBlob(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	db := rawDatabase(t, uri)
	bucket := db.GridFSBucket(options.GridFSBucket().SetName("blobs"))
	var got bytes.Buffer
	if _, err := bucket.DownloadToStream(t.Context(), key, &got); err != nil {
		t.Fatalf("driver download: %v", err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("driver download: %d bytes, not the %d written", got.Len(), len(data))
	}
	if n := count(t, db.Collection("blobs.chunks"), bson.D{{Key: "files_id", Value: key}}); n != 3 {
		t.Errorf("%d chunks, want 3 of 255 KiB", n)
	}

	small := data[:10<<10]
	const puts = 20
	allocated := allocatedUnder(t, "store/mongo.(*Store).PutBlob", func() {
		for i := range puts {
			if err := s.PutBlob(t.Context(), model.OriginalKey(fmt.Sprintf("small%d", i)), small); err != nil {
				t.Fatal(err)
			}
		}
	})
	// Encoding the insert, the reply and the lease: some tens of KiB.
	if per := allocated / puts; per > 1<<20 {
		t.Errorf("%d KiB allocated per 10 KiB blob", per>>10)
	}
}

// allocatedUnder returns the bytes do allocated in calls made under the
// function named fn, leaving out everything else the process allocated
// meanwhile (here, the embedded FerretDB serving the requests).
func allocatedUnder(t *testing.T, fn string, do func()) uint64 {
	t.Helper()
	sum := func() uint64 {
		runtime.GC() // the profile is as of the last completed cycle
		runtime.GC()
		recs := make([]runtime.MemProfileRecord, 1024)
		for {
			n, ok := runtime.MemProfile(recs, true)
			if ok {
				recs = recs[:n]
				break
			}
			recs = make([]runtime.MemProfileRecord, n+1024)
		}
		var total uint64
		for _, r := range recs {
			frames := runtime.CallersFrames(r.Stack())
			for f, more := frames.Next(); ; f, more = frames.Next() {
				if strings.HasSuffix(f.Function, fn) {
					total += uint64(r.AllocBytes)
					break
				}
				if !more {
					break
				}
			}
		}
		return total
	}
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1 // every allocation, not a sample
	defer func() { runtime.MemProfileRate = rate }()
	before := sum()
	do()
	return sum() - before
}
