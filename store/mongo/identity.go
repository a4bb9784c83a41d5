package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/imgpipe/imgpipe/store"
)

// metaName holds facts about the store itself: one document so far, the
// store's identity (store.Store.Identity). It is in the database, so a
// copy of the database (mongodump, a restored backup) keeps it.
const metaName = "meta"

// loadIdentity reads the store's identity, making it if this is the
// database's first open. Processes opening a new database together race
// to make it: an upsert that loses finds the winner's.
func (s *Store) loadIdentity(ctx context.Context) error {
	meta := s.db.Collection(metaName)
	filter := bson.D{{Key: "_id", Value: "identity"}}
	update := bson.D{{Key: "$setOnInsert", Value: bson.D{
		{Key: "id", Value: store.NewIdentity()},
		{Key: "created_at", Value: time.Now().UTC()},
	}}}
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	var doc struct {
		ID string `bson:"id"`
	}
	err := meta.FindOneAndUpdate(ctx, filter, update, opts).Decode(&doc)
	if mongo.IsDuplicateKeyError(err) {
		err = meta.FindOne(ctx, filter).Decode(&doc)
	}
	if err != nil {
		return fmt.Errorf("store/mongo: identity: %w", err)
	}
	if doc.ID == "" {
		return fmt.Errorf("store/mongo: identity: the %s document in collection %s has no id", "identity", metaName)
	}
	s.identityMu.Lock()
	defer s.identityMu.Unlock()
	s.identity = doc.ID
	return nil
}

// Peek reads the identity of the database at uri without writing anything:
// "" for a database imgpipe never opened, or that does not exist (reading
// does not create it, which Open would, with its indexes and identity).
// where names it as Store.Where does. Errors are Open's.
func Peek(ctx context.Context, uri string) (identity, where string, err error) {
	client, cs, dbName, err := connect(uri)
	if err != nil {
		return "", "", err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		_ = client.Disconnect(dctx)
	}()
	s := &Store{client: client}
	if err := s.Ping(ctx); err != nil {
		return "", "", misconfigured(err)
	}
	var doc struct {
		ID string `bson:"id"`
	}
	// From the primary, whatever the URL's read preference: a secondary
	// may not have the identity another process has just made.
	meta := client.Database(dbName).Collection(metaName, options.Collection().SetReadPreference(readpref.Primary()))
	err = meta.FindOne(ctx, bson.D{{Key: "_id", Value: "identity"}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		err = nil
	}
	if err != nil {
		return "", "", fmt.Errorf("store/mongo: identity: %w", misconfigured(err))
	}
	return doc.ID, whereOf(cs, dbName), nil
}

// Identity is read at open (see store.Store).
func (s *Store) Identity() string {
	s.identityMu.Lock()
	defer s.identityMu.Unlock()
	return s.identity
}

// Reidentify writes a new identity (see store.Store).
func (s *Store) Reidentify(ctx context.Context) (string, error) {
	id := store.NewIdentity()
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "id", Value: id}, {Key: "created_at", Value: time.Now().UTC()}}}}
	if _, err := s.db.Collection(metaName).UpdateOne(ctx, bson.D{{Key: "_id", Value: "identity"}}, update, options.UpdateOne().SetUpsert(true)); err != nil {
		return "", fmt.Errorf("store/mongo: new identity: %w", err)
	}
	s.identityMu.Lock()
	defer s.identityMu.Unlock()
	s.identity = id
	return id, nil
}

// Where is the URL's hosts and database, without credentials or options.
func (s *Store) Where() string { return s.where }
