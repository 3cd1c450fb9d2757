import { runMain } from '@aese/runtime';
import { startCryptoService } from './server.js';

runMain('crypto', startCryptoService);
