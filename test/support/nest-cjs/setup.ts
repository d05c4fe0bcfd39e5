// Runs before each test file (jest.config.js setupFiles): the ES module
// instances that a CommonJS require() of Nest resolves to (see resolver.cjs).
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';

(globalThis as Record<symbol, unknown>)[Symbol.for('lineage.test.nest-esm')] = { common, core };
