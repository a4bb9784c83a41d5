// Package natsbus implements bus.Bus on NATS JetStream (nats.go's
// jetstream package), against a cluster or an embedded in-process server.
//
// Layout, for a Prefix of "imgpipe":
//
//	queue     subjects              stream              retention
//	transform imgpipe.transform.>   IMGPIPE_TRANSFORM   work queue
//	save      imgpipe.save.>        IMGPIPE_SAVE        work queue
//	activity  imgpipe.activity.>    IMGPIPE_ACTIVITY    limits (MaxAge)
//	status    KV bucket imgpipe_status      (stream KV_imgpipe_status)
//	stage     imgpipe.stage.>       IMGPIPE_STAGE       last per subject (see stage.go)
//
// A Message with Subject "ab12" on Transform is published to
// imgpipe.transform.ab12 and delivered with Subject() "ab12"; its ID is the
// Nats-Msg-Id, deduplicated for two minutes.
//
// Delivery is at least once: acks are fire-and-forget and a late ack can
// race a redelivery, so every handler must be idempotent. Failed handlers
// are retried with Retry.Backoff through NakWithDelay; AckWait covers
// workers that crash or hang (a consumer's shorter AckWait, with
// heartbeats while its handler runs, brings a dead worker's delivery back
// sooner), and a bounded consumer's extra, Exhausted,
// deliveries the case where every attempt ended that way (see Consume).
// Work queue streams admit one consumer per subject, so Watch (live feeds)
// works on activity only.
package natsbus
