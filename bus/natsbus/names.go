package natsbus

import (
	"fmt"
	"strings"

	"github.com/imgpipe/imgpipe/bus"
)

// names derives every subject, stream and bucket name from the prefix, in
// one place, so that the layout can be read (and documented) at a glance:
//
//	subject  <prefix>.<queue>.<Message.Subject>   imgpipe.transform.ab12
//	stream   <PREFIX>_<QUEUE>                     IMGPIPE_TRANSFORM
//	status   KV bucket <prefix>_status            (stream KV_imgpipe_status)
//	meta     KV bucket <prefix>_meta              (stream KV_imgpipe_meta)
//	stage    stream <PREFIX>_STAGE, <prefix>.stage.<key>.…  (see stage.go)
type names struct{ prefix string }

func (n names) stream(q bus.Queue) string {
	return strings.ToUpper(n.prefix + "_" + string(q))
}

// queueSubject is the subject prefix of q, without the trailing dot.
func (n names) queueSubject(q bus.Queue) string { return n.prefix + "." + string(q) }

func (n names) subject(q bus.Queue, subject string) string {
	return n.queueSubject(q) + "." + subject
}

// wildcard matches every subject of q.
func (n names) wildcard(q bus.Queue) string { return n.queueSubject(q) + ".>" }

// trim returns the Message.Subject part of a full subject.
func (n names) trim(q bus.Queue, full string) string {
	return strings.TrimPrefix(full, n.queueSubject(q)+".")
}

func (n names) statusBucket() string { return n.prefix + "_status" }

func (n names) metaBucket() string { return n.prefix + "_meta" }

// stageQueue names the staging stream like a queue, so its stream and
// subjects follow the same pattern; it is not in bus.Queues.
const stageQueue bus.Queue = "stage"

// fanOut reports whether every durable consumer of q sees every message
// (Limits retention) rather than one of them (WorkQueue retention).
func fanOut(q bus.Queue) bool { return q == bus.Activity }

func knownQueue(q bus.Queue) error {
	for _, k := range bus.Queues {
		if q == k {
			return nil
		}
	}
	return fmt.Errorf("natsbus: unknown queue %q", q)
}

// checkSubject accepts dot-separated tokens without wildcards or spaces.
// Wildcards are allowed in consumer filters only (wild=true).
func checkSubject(s string, wild bool) error {
	if s == "" {
		return fmt.Errorf("natsbus: empty subject")
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return fmt.Errorf("natsbus: subject %q has an empty token", s)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("natsbus: subject %q contains white space", s)
		}
		if !wild && strings.ContainsAny(tok, "*>") {
			return fmt.Errorf("natsbus: subject %q contains a wildcard", s)
		}
	}
	return nil
}
