package statetest

// dailyTests are the everyday features of issue 12: listing options,
// expiry control, counters, checkpoint inspection and typed access.
func dailyTests() []storeTest {
	var all []storeTest
	for _, group := range [][]storeTest{listTests, expiryTests, counterTests, checkpointManageTests, typedTests} {
		all = append(all, group...)
	}
	return all
}
