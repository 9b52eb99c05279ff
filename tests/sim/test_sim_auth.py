"""The token and authorize endpoints: grants, single-use refresh tokens, client_id, providers."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import parse_qs, urlsplit

import httpx

from fleetlog.sim.server import SimServer

StartSim = Callable[..., AbstractAsyncContextManager[SimServer]]  # the conftest fixture


def token_url(sim: SimServer) -> str:
    return sim.env["TESLA_AUTH_HOST"] + sim.env["TESLA_AUTH_PATH"] + "/token"


async def test_refresh_tokens_are_single_use_and_rotate(start_sim: StartSim) -> None:
    async with start_sim() as sim, httpx.AsyncClient() as c:
        refresh = sim.env["FLEETLOG_REFRESH_TOKEN"]
        assert refresh.startswith("EU_")
        form = {
            "grant_type": "refresh_token",
            "client_id": sim.env["TESLA_AUTH_CLIENT_ID"],
            "refresh_token": refresh,
        }
        r = await c.post(token_url(sim), data=form)
        assert r.status_code == 200
        body = r.json()
        assert body["expires_in"] == 28800 and body["token_type"] == "Bearer"
        assert body["refresh_token"] != refresh and body["access_token"]
        claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
        assert "vehicle_location" in claims["scp"] and claims["exp"] - claims["iat"] == 28800
        # The new access token works; the spent refresh token does not.
        r2 = await c.get(
            sim.base_url + "/api/1/vehicles",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
        assert r2.status_code == 200
        again = await c.post(token_url(sim), data=form)
        assert again.status_code == 401 and again.json()["error"] == "login_required"
        # TeslaMate sends JSON; the rotated token works that way too.
        r3 = await c.post(token_url(sim), json={**form, "refresh_token": body["refresh_token"]})
        assert r3.status_code == 200


async def test_client_id_is_checked(start_sim: StartSim) -> None:
    async with start_sim(mode="owner") as sim, httpx.AsyncClient() as c:
        assert sim.env["TESLA_AUTH_CLIENT_ID"] == "ownerapi"
        form = {
            "grant_type": "refresh_token",
            "client_id": "someone-else",
            "refresh_token": sim.env["FLEETLOG_REFRESH_TOKEN"],
        }
        r = await c.post(token_url(sim), data=form)
        assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
        r = await c.post(token_url(sim), data={**form, "client_id": "ownerapi"})
        assert r.status_code == 200
        bad = await c.post(token_url(sim), data={"grant_type": "password", "client_id": "ownerapi"})
        assert bad.status_code == 400


async def test_authorization_code_grant_with_pkce(start_sim: StartSim) -> None:
    async with start_sim() as sim, httpx.AsyncClient() as c:
        verifier = "v" * 64
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
            b"="
        )
        params = {
            "response_type": "code",
            "client_id": sim.env["TESLA_AUTH_CLIENT_ID"],
            "redirect_uri": "https://app.example/callback",
            "scope": "openid offline_access vehicle_device_data vehicle_location",
            "state": "xyz",
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
        auth = sim.env["TESLA_AUTH_HOST"] + sim.env["TESLA_AUTH_PATH"] + "/authorize"
        r = await c.get(auth, params=params)
        assert r.status_code == 302
        location = urlsplit(r.headers["Location"])
        assert location.netloc == "app.example"
        query = parse_qs(location.query)
        assert query["state"] == ["xyz"]
        code = query["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "client_id": sim.env["TESLA_AUTH_CLIENT_ID"],
            "client_secret": sim.world.options.client_secret,
            "code": code,
            "redirect_uri": "https://app.example/callback",
            "code_verifier": verifier,
            "state": "xyz",
        }
        bad = await c.post(token_url(sim), data={**exchange, "code_verifier": "wrong"})
        assert bad.status_code == 400
        # A failed exchange spends the code, as a real single-use code is spent.
        r = await c.get(auth, params=params)
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
        ok = await c.post(token_url(sim), data={**exchange, "code": code})
        assert ok.status_code == 200
        assert ok.json()["state"] == "xyz" and ok.json()["refresh_token"].startswith("EU_")
        reused = await c.post(token_url(sim), data={**exchange, "code": code})
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_auth_code"


async def test_provider_auth_needs_the_token(start_sim: StartSim) -> None:
    async with start_sim(mode="myteslamate") as sim, httpx.AsyncClient() as c:
        url = token_url(sim)
        assert url.endswith("/api/oauth2/v3/token")
        form = {"grant_type": "refresh_token", "client_id": "ownerapi", "refresh_token": ""}
        r = await c.post(url, data=form)
        assert r.status_code == 401 and r.json()["error"] == "missing_token"
        # TeslaMate's sign-in with TOKEN: a refresh with empty tokens, TOKEN as bearer.
        headers = {"Authorization": f"Bearer {sim.env['TOKEN']}"}
        r = await c.post(url, data=form, headers=headers)
        assert r.status_code == 200 and r.json()["expires_in"] == 28800
        refresh = r.json()["refresh_token"]
        r = await c.post(
            url, params={"token": sim.env["TOKEN"]}, data={**form, "refresh_token": refresh}
        )
        assert r.status_code == 200
        r = await c.post(url, headers=headers, data={**form, "refresh_token": refresh})
        assert r.status_code == 401 and r.json()["error"] == "login_required"


async def test_client_credentials_partner_token(start_sim: StartSim) -> None:
    async with start_sim() as sim, httpx.AsyncClient() as c:
        form = {
            "grant_type": "client_credentials",
            "client_id": sim.world.options.client_id,
            "client_secret": sim.world.options.client_secret,
            "scope": "openid vehicle_device_data",
            "audience": sim.base_url,
        }
        r = await c.post(token_url(sim), data=form)
        assert r.status_code == 200 and "refresh_token" not in r.json()
        r = await c.post(token_url(sim), data={**form, "client_secret": "nope"})
        assert r.status_code == 401
