"""The web page in a real headless Chromium: pick an image, see the overlay (checked on a screenshot) and legend."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from ..conftest import require_executable, require_module
from .conftest import random_image

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--force-device-scale-factor=1", "--window-size=1000,800"]


@pytest.fixture()
def browser(tmp_path):
    require_module("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = require_executable("chromium")
    driver_path = require_executable("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def test_page_shows_overlay_and_legend(browser, server_url, segmenter, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # smooth blobs so the random model gives a few regions; a size the page shows unscaled
    base = random_image(12, 16, seed=3)
    image = np.asarray(Image.fromarray(base).resize((160, 120), Image.BILINEAR))
    path = tmp_path / "street.png"
    Image.fromarray(image).save(path)
    expected = segmenter.predict_rgb([image])[0]

    browser.get(f"{server_url}/")
    WebDriverWait(browser, 30).until(lambda d: "pp_liteseg_t" in d.find_element(By.ID, "model").text)
    assert browser.find_element(By.ID, "model").text.startswith("PP-LiteSeg-T, ")  # what the model is for
    browser.find_element(By.ID, "file").send_keys(str(path))
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                     in ("done", "error"))
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", \
        browser.find_element(By.ID, "status").text
    assert "street.png: 160×120" in browser.find_element(By.ID, "status").text

    rows = browser.find_elements(By.CSS_SELECTOR, "#legend tbody tr")
    shares = expected.class_shares()
    assert sorted(r.find_elements(By.TAG_NAME, "td")[1].text for r in rows) == sorted(shares)
    first = rows[0].find_elements(By.TAG_NAME, "td")
    assert first[2].text == f"{max(shares.values()) * 100:.1f} %"

    rect = browser.execute_script(
        "const r = document.getElementById('overlay').getBoundingClientRect();"
        "return [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)];")
    assert rect[2:] == [160, 120]
    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")).astype(np.int16)
    x, y, w, h = rect
    shown = shot[y:y + h, x:x + w]
    overlay_error = np.abs(shown - expected.overlay(0.5).astype(np.int16)).mean()
    input_error = np.abs(shown - image.astype(np.int16)).mean()
    assert overlay_error < 3, f"the screenshot differs from the overlay by {overlay_error:.1f} on average"
    assert input_error > 10 * max(overlay_error, 1), "the page shows the input, not the overlay"
