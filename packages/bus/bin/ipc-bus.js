#!/usr/bin/env node
// The `ipc-bus` command: runs the built CLI (src/cli/main.ts -> dist/cli/main.js).
import '../dist/cli/main.js'
