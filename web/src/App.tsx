import { NavLink, Route, Routes } from "react-router-dom";

import { useLiveRefresh } from "./api/queries";
import { ErrorBanner } from "./components/ErrorBanner";
import { NotFound } from "./components/States";
import { AgentPage } from "./pages/AgentPage";
import { HealthPage } from "./pages/HealthPage";
import { MarketPage } from "./pages/MarketPage";
import { RacePage } from "./pages/RacePage";

export function App() {
  useLiveRefresh();
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <nav className="topnav" aria-label="Main">
        <span className="brand">AI Trading Race</span>
        <NavLink to="/" end>
          Race
        </NavLink>
        <NavLink to="/market">Market</NavLink>
        <NavLink to="/health">Health</NavLink>
      </nav>
      <ErrorBanner />
      <main id="main">
        <Routes>
          <Route path="/" element={<RacePage />} />
          <Route path="/agents/:agentId" element={<AgentPage />} />
          <Route path="/market" element={<MarketPage />} />
          <Route path="/health" element={<HealthPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}
