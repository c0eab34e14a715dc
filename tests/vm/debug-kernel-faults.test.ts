import { defineDebugSuite } from '../debug/debug-suite.js';

// In `make test` (and so in CI): the fault cases and the leak scan on the
// debug kernel; the whole suite there is `make test-debug`.
defineDebugSuite('ci');
