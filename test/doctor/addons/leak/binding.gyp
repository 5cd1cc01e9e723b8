{
  # A test-only addon that mallocs and never frees: the native leak the doctor must name.
  # Built by test/doctor/leaks.test.ts into its own build/ directory (not committed).
  "targets": [{ "target_name": "leak", "sources": ["leak.c"] }]
}
