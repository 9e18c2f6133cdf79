package robustness

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// dumpFailure logs, for each group porcupine could not linearize, the end of
// the longest partial linearization it found and the operations around it:
// usually enough to see the anomaly without opening the visualization.
func dumpFailure(t *testing.T, history []porcupine.Operation, info porcupine.LinearizationInfo) {
	for _, part := range info.PartialLinearizationsOperations() {
		longest := []porcupine.Operation{}
		for _, l := range part {
			if len(l) > len(longest) {
				longest = l
			}
		}
		st := storeModel.Init()
		for _, op := range longest {
			_, st = storeModel.Step(st, op.Input, op.Output)
		}
		if len(longest) == 0 {
			continue
		}
		g := longest[0].Input.(input).group
		var total int
		for _, op := range history {
			if op.Input.(input).group == g {
				total++
			}
		}
		if len(longest) == total {
			continue
		}
		t.Logf("group %d: longest partial linearization %d of %d; state after: %s", g, len(longest), total, describeState(st))
		for _, op := range longest[max(0, len(longest)-6):] {
			t.Logf("  lin c%d [%d,%d] %s", op.ClientId, op.Call/1000, op.Return/1000, describeOp(op.Input, op.Output))
		}
		last := longest[len(longest)-1]
		for _, op := range history {
			if op.Input.(input).group == g && op.Call <= last.Return+2000000 && op.Return >= last.Call-2000000 {
				t.Logf("  near c%d [%d,%d] %s", op.ClientId, op.Call/1000, op.Return/1000, describeOp(op.Input, op.Output))
			}
		}
	}
}
