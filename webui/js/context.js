// The app object (store, API client, actions) handed to every view.
import { createContext } from "./lib.js";

export const AppContext = createContext(null);
