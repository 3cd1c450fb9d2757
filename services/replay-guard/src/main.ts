import { runMain } from '@aese/runtime';
import { startReplayGuardService } from './server.js';

runMain('replay-guard', startReplayGuardService);
