// Package mongo is the MongoDB store: blobs in the GridFS bucket "blobs"
// (file id = blob key), image records in "images" and activity in "events"
// (both keyed by their own id, so rewrites and redeliveries stay single).
// It also runs on FerretDB, which the tests use.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/imgpipe/imgpipe/internal/loglimit"
	"github.com/imgpipe/imgpipe/store"
)

// DefaultDatabase is used when the URL names none.
const DefaultDatabase = "imgpipe"

// Names of the collections and of the GridFS bucket.
const (
	bucketName = "blobs"        // collections blobs.files and blobs.chunks
	leasesName = "blobs.leases" // who is writing which blob (lease.go)
	imagesName = "images"
	eventsName = "events"
)

// Store is the MongoDB implementation of store.Store.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	bucket *mongo.GridFSBucket
	files  *mongo.Collection
	chunks *mongo.Collection
	leases *mongo.Collection
	images *mongo.Collection
	events *mongo.Collection
	log    *slog.Logger
	// identity and where are read and made at open (identity.go).
	identity, where string
	identityMu      sync.Mutex // Reidentify may replace identity

	releaseLog loglimit.Limiter // lease releases that failed (lease.go)
}

var _ store.Store = (*Store)(nil)

// serverSelectionTimeout is how long an operation waits for a server it
// can use, unless the URL says (serverSelectionTimeoutMS). The driver's
// 30 s held every request of a store outage that long (an upload's
// duplicate check, a listing, an original), each answered 503 in the
// end: clients are better told in seconds, and the roles retry their
// writes anyway. An election in a replica set takes about ten seconds; a
// write that meets one fails and is tried again.
const serverSelectionTimeout = 5 * time.Second

// Open connects to the MongoDB at uri (mongodb:// or mongodb+srv://), checks
// that it answers and creates the indexes the queries need. The database is
// the URI's path, DefaultDatabase if empty. ctx bounds the whole of it.
func Open(ctx context.Context, uri string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, cs, dbName, err := connect(uri)
	if err != nil {
		return nil, err
	}
	// "Returns only when durable": unless the URL says otherwise, writes
	// wait for a majority of the replica set and for the journal.
	dbOpts := options.Database()
	wc := writeconcern.Majority()
	if !cs.WNumberSet && cs.WString == "" && !cs.JSet {
		journal := true
		wc.Journal = &journal
		dbOpts.SetWriteConcern(wc)
	} else {
		wc = nil // the URL's own write concern, inherited from the client
	}
	db := client.Database(dbName, dbOpts)
	s := &Store{
		client: client,
		db:     db,
		bucket: db.GridFSBucket(options.GridFSBucket().SetName(bucketName).SetWriteConcern(wc)),
		files:  db.Collection(bucketName + ".files"),
		chunks: db.Collection(bucketName + ".chunks"),
		leases: db.Collection(leasesName),
		images: db.Collection(imagesName),
		events: db.Collection(eventsName),
		log:    log,
		where:  whereOf(cs, dbName),
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, misconfigured(err)
	}
	if err := s.createIndexes(ctx); err != nil {
		_ = s.Close()
		return nil, misconfigured(err)
	}
	if err := s.loadIdentity(ctx); err != nil {
		_ = s.Close()
		return nil, misconfigured(err)
	}
	log.Info("store opened", "kind", store.KindMongo, "hosts", strings.Join(cs.Hosts, ","), "database", dbName)
	return s, nil
}

// connect makes a client for uri, and names its database: the URI's path,
// DefaultDatabase if empty. The URI is parsed first so that errors never
// echo it: it may carry a password.
func connect(uri string) (*mongo.Client, *connstring.ConnString, string, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, nil, "", urlError(err)
	}
	dbName := cs.Database
	if dbName == "" {
		dbName = DefaultDatabase
	}
	opts := options.Client().ApplyURI(uri).SetAppName("imgpipe")
	if !cs.ServerSelectionTimeoutSet {
		opts.SetServerSelectionTimeout(serverSelectionTimeout)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, nil, "", fmt.Errorf("store/mongo: connect: %w", err)
	}
	return client, cs, dbName, nil
}

// whereOf names a database for people (store.Store.Where): no credentials.
func whereOf(cs *connstring.ConnString, dbName string) string {
	return cs.Scheme + "://" + strings.Join(cs.Hosts, ",") + "/" + dbName
}

// Ping asks the primary for an answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("store/mongo: ping: %w", err)
	}
	return nil
}

// closeTimeout bounds how long Close waits for in-flight operations.
const closeTimeout = 10 * time.Second

// Close disconnects from the server.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("store/mongo: close: %w", err)
	}
	return nil
}

// misconfigured marks the server's refusals that no retry can change: a
// login refused (the handshake's, which Ping is the first to need), a
// user without the rights, a database name refused.
func misconfigured(err error) error {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		switch ce.Code {
		case 13, 18, 73: // Unauthorized, AuthenticationFailed, InvalidNamespace
			return fmt.Errorf("%w: %w", store.ErrMisconfigured, err)
		}
	}
	return err
}

// urlError says what is wrong with a URL the driver could not parse,
// without the URL: no retry mends it, so the start fails at once. The
// driver's reason is given unless it may quote the credentials. An
// mongodb+srv:// name that did not resolve is not the URL's fault, and is
// tried again.
func urlError(err error) error {
	reason := strings.TrimPrefix(err.Error(), "error parsing uri: ")
	if strings.Contains(reason, "lookup ") {
		return fmt.Errorf("store/mongo: the mongodb+srv:// name did not resolve: %s", reason)
	}
	if strings.Contains(reason, "password") || strings.Contains(reason, "username") {
		reason = "the user name or password is not escaped (percent-encode @, :, / and %)"
	}
	return fmt.Errorf("%w: store/mongo: invalid MongoDB URL: %s", store.ErrMisconfigured, reason)
}
