package dom0_test

import (
	"strings"
	"testing"
)

// F2 (threats.md: "createrepo_c fails"): a build whose metadata createrepo_c
// could not write is no repository, so the delivery is refused naming the
// tool, and nothing is published (overview.md step 6: "packages plus
// metadata from createrepo_c").
func TestCreateRepoFailureRefusesTheDelivery(t *testing.T) {
	c, batch := benchDom0(t, nil)
	standInTool(t, "createrepo_c", "#!/bin/sh\necho 'createrepo_c: cannot write the metadata' >&2\nexit 1\n")
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "createrepo_c") {
		t.Errorf("accepted %v (%v): %s; want refused naming createrepo_c; log:\n%s", res.Accepted, err, res.Error, log)
	}
	assertNothingPublished(t, c)
}

// The result records when the delivery finished, not before it started
// (docs/operations.md: the delivery record's "started" and "finished"): the
// log's reader measures a delivery by them.
func TestResultRecordsWhenTheDeliveryFinished(t *testing.T) {
	res, _ := acceptedDelivery(t)
	if res.Started.IsZero() || res.Finished.Before(res.Started) {
		t.Errorf("started %v, finished %v; want both, the finish not before the start", res.Started, res.Finished)
	}
}
