import { runMain } from '@aese/runtime';
import { startEdgeService } from './server.js';

runMain('edge', startEdgeService);
