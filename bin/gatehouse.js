#!/usr/bin/env node
// The gatehouse command. It runs the TypeScript sources directly through tsx, so a checkout needs
// no build step: `npm install && npm start` serves.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
