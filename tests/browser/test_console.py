"""The web console in headless Chromium, as a newcomer uses it (docs/console.md): open the
address `pixelfront dev --ingest samples` printed and see the samples; upload a corpus photo
through the file input and see its eight variants load; change the width in the playground and
see the key and the image change, fold a DPR into the width, and see a rejected request's reason; take the photo down and see
it gone; the tenants and metrics pages; the gallery at 375 px; alt texts, labels and the
keyboard. Each page's screenshot is saved (conftest.py). The tests run in file order and build
on each other (the upload is what the later pages use)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from conftest import CORPUS, wait_for

PHOTO_FILE = "Wine_by_Jakkub_Mede.jpg"
PREFIX = "uploads/"
# A sample of that name exists already: under the prefix the upload is a new asset, version 1.
PHOTO = PREFIX + PHOTO_FILE
SAMPLES = 6


def css(driver, selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def loaded(driver, img) -> bool:
    return bool(driver.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img))


def go(driver, stack, route):
    driver.get(f"{stack.base}/console/{route}")


def api(stack, path):
    req = urllib.request.Request(stack.base + path,
                                 headers={"Authorization": f"Bearer {stack.token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def no_script_errors(driver):
    """No uncaught error and no Content-Security-Policy violation in the page's console."""
    bad = [e["message"] for e in driver.get_log("browser")
           if "Uncaught" in e["message"] or "Content Security Policy" in e["message"]]
    assert not bad, bad


def test_the_printed_address_opens_on_the_samples(stack, browser, shots):
    assert "/console/#token=" in stack.console_url, stack.lines
    browser.get(stack.console_url)
    wait_for("the signed-in caller", lambda: "admin" in one(browser, "#whoami").text)
    assert "token" not in browser.current_url, "the token leaves the address bar"
    cards = wait_for(f"{SAMPLES} sample cards",
                     lambda: len(css(browser, "#gallery li.asset")) >= SAMPLES and
                     css(browser, "#gallery li.asset"))
    wait_for("every thumbnail to load",
             lambda: all(loaded(browser, img) for img in css(browser, "#gallery li.asset img"))
             and len(css(browser, "#gallery li.asset img")) >= SAMPLES)
    assert {c.get_attribute("data-status") for c in cards} == {"ready"}
    for img in css(browser, "#gallery img"):
        assert img.get_attribute("alt"), img.get_attribute("outerHTML")
    browser.save_screenshot(str(shots / "console-gallery.png"))
    no_script_errors(browser)


def test_an_upload_shows_its_eight_variants(stack, browser, shots):
    go(browser, stack, "#/upload")
    picker = wait_for("the file input", lambda: one(browser, "#upload-files"))
    _set(browser, "#upload-prefix", PREFIX)
    picker.send_keys(str(CORPUS / "photos" / PHOTO_FILE))
    row = f'li.upload[data-key="{PHOTO}"]'
    wait_for("the upload's progress bar", lambda: css(browser, f"{row} progress"))
    status = wait_for("the upload to be ready", lambda: "ready" in one(
        browser, f"{row} .upload-status").text.lower() and one(browser, f"{row} .upload-status"),
        timeout=180)
    assert "failed" not in status.text.lower()
    browser.save_screenshot(str(shots / "console-upload.png"))

    go(browser, stack, f"#/asset/{urllib.parse.quote(PHOTO, safe='')}")
    figures = wait_for("eight variants",
                       lambda: len(css(browser, "#variants figure.variant")) == 8 and
                       css(browser, "#variants figure.variant"))
    names = {f.get_attribute("data-name") for f in figures}
    assert names == {"thumb", "sm-webp", "sm-avif", "md-webp", "md-avif", "md-jpeg", "lg-webp",
                     "lg-avif"}
    wait_for("all eight variants to load as images",
             lambda: all(loaded(browser, img) for img in css(browser, "#variants img")),
             timeout=60)
    caption = one(browser, 'figure.variant[data-name="md-webp"] figcaption').text
    assert "640" in caption and "WEBP" in caption.upper(), caption
    manifest = json.loads(one(browser, "#manifest").text)
    assert manifest["key"] == PHOTO and manifest["status"] == "ready"
    snippet = one(browser, "#snippet").get_attribute("value")
    assert "srcset" in snippet and PHOTO in snippet, snippet
    browser.save_screenshot(str(shots / "console-asset.png"))
    no_script_errors(browser)


def _playground_state(browser):
    img = one(browser, "#pg-image")
    return (one(browser, "#pg-normalized").text, img.get_attribute("src"),
            browser.execute_script("return arguments[0].naturalWidth", img))


def _set(browser, selector, value):
    field = one(browser, selector)
    field.clear()
    field.send_keys(str(value))
    field.send_keys(Keys.TAB)


def test_the_playground_shows_the_key_the_image_and_a_rejection(stack, browser, shots):
    go(browser, stack, "#/playground")
    wait_for("the asset picker", lambda: any(
        o.get_attribute("value") == PHOTO for o in css(browser, "#pg-key option")))
    Select(one(browser, "#pg-key")).select_by_value(PHOTO)
    Select(one(browser, "#pg-fmt")).select_by_value("webp")
    _set(browser, "#pg-w", 200)
    first = wait_for("the photo at w=200 as WebP",
                     lambda: (s := _playground_state(browser))[2] and
                     s[0].startswith(f"demo/v1/{PHOTO}/") and s[0].endswith(".webp") and s)
    _set(browser, "#pg-w", 1000)
    second = wait_for("the key and the image to change",
                      lambda: (s := _playground_state(browser))[0] != first[0] and
                      s[1] != first[1] and s[2] and s)
    assert second[2] > first[2], (first, second)
    assert one(browser, "#pg-bytes").text.strip() not in ("", "—")
    assert one(browser, "#pg-cache").text.strip() in ("Hit", "Miss")
    browser.save_screenshot(str(shots / "console-playground.png"))

    # dpr folds into the width: w=320 at 2x is the w=640 object.
    _set(browser, "#pg-w", 320)
    Select(one(browser, "#pg-dpr")).select_by_value("2")
    wait_for("w=320&dpr=2 to be the w640 object",
             lambda: one(browser, "#pg-normalized").text.endswith("/w640-q80.webp"))
    assert "dpr=2" in one(browser, "#pg-query").get_attribute("value")

    _set(browser, "#pg-query", "w=abc")
    error = wait_for("the rejection's reason",
                     lambda: (e := one(browser, "#pg-error")).is_displayed() and e.text and e)
    assert "400" in error.text and "bad w" in error.text, error.text
    browser.save_screenshot(str(shots / "console-playground-rejected.png"))
    no_script_errors(browser)


def test_a_takedown_removes_the_photo_everywhere(stack, browser, shots):
    variant = next(v["url"] for v in api(stack, f"/api/v1/tenants/demo/assets/{PHOTO}")["variants"]
                   if v["name"] == "md-webp")
    go(browser, stack, "#/takedown")
    _set(browser, "#td-key", PHOTO)
    Select(one(browser, "#td-action")).select_by_value("takedown")
    Select(one(browser, "#td-reason")).select_by_value("dmca")
    _set(browser, "#td-requester", "legal@example.com")
    confirm = one(browser, "#td-confirm")
    if not confirm.is_selected():
        confirm.click()
    one(browser, "#td-submit").click()
    wait_for("the takedown to finish",
             lambda: "finished" in one(browser, "#td-status").text.lower(), timeout=60)
    result = one(browser, "#td-result").text
    assert "dmca" in result and "legal@example.com" in result, result
    browser.save_screenshot(str(shots / "console-takedown.png"))

    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(variant, timeout=30)
    assert gone.value.code in (404, 410)
    go(browser, stack, "#/gallery")
    card = wait_for("the photo's card", lambda: css(browser, f'li.asset[data-key="{PHOTO}"]'))[0]
    wait_for("the card to say it is taken down",
             lambda: card.get_attribute("data-status") == "taken_down")
    assert not [i for i in card.find_elements(By.TAG_NAME, "img") if loaded(browser, i)]
    no_script_errors(browser)


def test_tenants_page_makes_an_api_key(stack, browser, shots):
    go(browser, stack, "#/tenants")
    row = wait_for("the demo tenant's row", lambda: css(browser, 'tr[data-tenant="demo"]'))[0]
    buttons = [b for b in row.find_elements(By.TAG_NAME, "button")
               if "api key" in b.text.lower() and "new" in b.text.lower()]
    assert buttons, row.text
    buttons[0].click()
    key = wait_for("the new key, shown once",
                   lambda: (t := one(browser, "#tn-new-key").text) and "pfk_" in t and t)
    assert key
    browser.save_screenshot(str(shots / "console-tenants.png"))
    listed = [t for t in api(stack, "/api/v1/tenants")["tenants"] if t["tenant"] == "demo"][0]
    assert len(listed["api_keys"]) == 1
    no_script_errors(browser)


def test_metrics_update_as_images_are_served(stack, browser, shots):
    go(browser, stack, "#/metrics")
    wait_for("the charts", lambda: css(browser, "#m-hit-ratio svg") and css(browser, "#m-renders svg"))
    before = one(browser, "#m-bytes").text
    # Traffic over a few polls (renders, then hits of the same sizes), so the charts have lines.
    for round_ in range(4):
        for w in (100, 300, 500, 700, 900):
            urllib.request.urlopen(f"{stack.base}/img/demo/v1/Landscape_6.jpg?w={w}&q={60 + round_}",
                                   timeout=30).read()
            urllib.request.urlopen(f"{stack.base}/img/demo/v1/Landscape_6.jpg?w={w}", timeout=30).read()
        time.sleep(2.1)
    wait_for("the bytes served to change", lambda: one(browser, "#m-bytes").text != before,
             timeout=15)
    points = browser.execute_script(
        "return [...document.querySelectorAll('#m-bytes svg polyline, #m-bytes svg path')]"
        ".map(e => (e.getAttribute('points') || e.getAttribute('d') || '').length)")
    assert points and max(points) > 0, points
    browser.save_screenshot(str(shots / "console-metrics.png"))
    no_script_errors(browser)


def test_small_screens_keyboard_and_labels(stack, browser, shots):
    browser.set_window_size(375, 800)
    try:
        go(browser, stack, "#/gallery")
        wait_for("the gallery", lambda: len(css(browser, "#gallery li.asset")) >= SAMPLES)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide at 375 px"
        browser.save_screenshot(str(shots / "console-mobile.png"))
    finally:
        browser.set_window_size(1280, 900)
    for route in ("#/gallery", "#/upload", "#/playground", "#/takedown", "#/tenants", "#/metrics"):
        go(browser, stack, route)
        wait_for(f"{route} to show", lambda: one(browser, "#main").text.strip())
        unlabeled = browser.execute_script("""
            return [...document.querySelectorAll('input, select, textarea')]
              .filter(e => e.type !== 'hidden' && !e.labels?.length && !e.getAttribute('aria-label')
                           && !e.getAttribute('aria-labelledby'))
              .map(e => e.id || e.outerHTML);""")
        assert not unlabeled, (route, unlabeled)
        no_alt = browser.execute_script(
            "return [...document.images].filter(i => !i.hasAttribute('alt')).map(i => i.src)")
        assert not no_alt, (route, no_alt)
    # The keyboard alone reaches the navigation and follows a link.
    go(browser, stack, "#/gallery")
    wait_for("the gallery", lambda: css(browser, "#gallery li.asset"))
    body = one(browser, "body")
    body.send_keys(Keys.TAB)
    seen = []
    for _ in range(30):
        active = browser.switch_to.active_element
        href = active.get_attribute("href") or ""
        seen.append(href or active.tag_name)
        if href.endswith("#/upload"):
            active.send_keys(Keys.ENTER)
            break
        active.send_keys(Keys.TAB)
    wait_for("the upload page, reached by keyboard",
             lambda: browser.current_url.endswith("#/upload") and css(browser, "#upload-files"))
