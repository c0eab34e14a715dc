import { defineDebugSuite } from './debug-suite.js';

// `make test-debug`: everything on the debug kernel (tests/debug/debug-suite.ts).
defineDebugSuite('full');
