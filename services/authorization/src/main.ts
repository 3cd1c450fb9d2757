import { runMain } from '@aese/runtime';
import { startAuthorizationService } from './server.js';

runMain('authorization', startAuthorizationService);
